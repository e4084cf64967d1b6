//! `weir sign`: cosign-layout signature of a pushed image, or a new key pair.

use anyhow::{Context, Result};
use weir_cli::fsutil::write_atomic;
use weir_cli::oci::registry::parse_reference;
use weir_cli::oci::signature;
use weir_cli::UserError;

use crate::args::SignArgs;
use crate::printer::Printer;
use crate::settings::registry_for;

pub(crate) async fn sign(args: SignArgs, printer: Printer) -> Result<()> {
    if let Some(prefix) = &args.generate_key {
        let (private, public) = signature::generate_key_pair()?;
        let key_path = prefix.with_extension("key");
        let pub_path = prefix.with_extension("pub");
        write_atomic(&key_path, private.as_bytes())?;
        write_atomic(&pub_path, public.as_bytes())?;
        printer.status(format!(
            "Wrote {} (keep secret) and {}",
            key_path.display(),
            pub_path.display()
        ));
        return Ok(());
    }
    let (Some(reference), Some(key_path)) = (&args.reference, &args.key) else {
        return Err(UserError("sign needs an image reference and --key".into()).into());
    };
    let reference = parse_reference(reference)?;
    let key = signature::read_private_key(key_path)?;
    let registry = registry_for(&args.registry, &reference)?;
    let (digest, sig_ref) = signature::sign(&registry, &reference, &key)
        .await
        .with_context(|| format!("signing {}", reference.whole()))?;
    printer.status(format!("Signed {digest} as {}", sig_ref.whole()));
    printer.result(digest);
    Ok(())
}
