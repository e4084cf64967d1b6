//! `weir pull`: registry → plugin.wasm, verified.

use anyhow::{Context, Result};
use weir_cli::fsutil::write_atomic;
use weir_cli::oci::registry::parse_reference;
use weir_cli::oci::signature;

use crate::args::PullArgs;
use crate::printer::Printer;
use crate::reporters::TransferReporter;
use crate::settings::registry_for;

pub(crate) async fn pull(args: PullArgs, printer: Printer) -> Result<()> {
    let reference = parse_reference(&args.reference)?;
    let verify_key = match &args.verify_key {
        Some(path) => Some(signature::read_public_key(path)?),
        None => None,
    };
    let registry = registry_for(&args.registry, &reference)?;
    let reporter = TransferReporter::new(printer);
    let pulled = registry
        .pull(&reference, args.sha256.as_deref(), &reporter)
        .await
        .with_context(|| format!("pulling {}", reference.whole()))?;
    if let Some(key) = &verify_key {
        signature::verify(&registry, &reference, &pulled.manifest_digest, key)
            .await
            .with_context(|| format!("verifying the signature of {}", reference.whole()))?;
        printer.status("Verified: signed with the given key");
    }
    write_atomic(&args.output, &pulled.wasm)?;
    printer.status(format!(
        "Pulled {} ({}, {} bytes) to {}",
        reference.whole(),
        pulled.format,
        pulled.wasm.len(),
        args.output.display()
    ));
    printer.result(pulled.manifest_digest);
    Ok(())
}
