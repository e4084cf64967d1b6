//! `weir migrate`: ServiceMeshExtension YAML → WasmPlugin YAML, or an old extension image →
//! a compat image with /plugin.wasm.

use anyhow::{Context, Result};
use weir_cli::fsutil::write_atomic;
use weir_cli::manifest::migrate::migrate_extension;
use weir_cli::manifest::validate::parse_documents;
use weir_cli::manifest::wasmplugin::to_yaml;
use weir_cli::oci::image::build_image;
use weir_cli::oci::legacy::pull_extension_module;
use weir_cli::oci::registry::parse_reference;
use weir_cli::oci::ImageFormat;
use weir_cli::wasm::inspect_module;
use weir_cli::UserError;

use crate::args::MigrateArgs;
use crate::printer::Printer;
use crate::reporters::TransferReporter;
use crate::settings::RegistrySettings;

pub(crate) async fn migrate(args: MigrateArgs, printer: Printer) -> Result<()> {
    if let Some(images) = &args.image {
        let [src, dst] = images.as_slice() else {
            return Err(UserError("--image takes SRC and DST".into()).into());
        };
        return migrate_image(src, dst, &args, printer).await;
    }
    let mut plugins = Vec::new();
    for file in &args.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let docs = parse_documents(&text)
            .map_err(|e| UserError(format!("{}: not YAML: {e}", file.display())))?;
        for doc in docs {
            let migrated =
                migrate_extension(&doc).with_context(|| format!("migrating {}", file.display()))?;
            for note in &migrated.notes {
                printer.warn(note);
            }
            plugins.push(migrated.plugin);
        }
    }
    let yaml = to_yaml(&plugins)?;
    match &args.output {
        Some(path) => write_atomic(path, yaml.as_bytes())?,
        None => print!("{yaml}"),
    }
    Ok(())
}

async fn migrate_image(src: &str, dst: &str, args: &MigrateArgs, printer: Printer) -> Result<()> {
    let src_ref = parse_reference(src)?;
    let dst_ref = parse_reference(dst)?;
    let reporter = TransferReporter::new(printer);
    let settings = RegistrySettings::new(&args.registry)?;
    let src_registry = settings.registry_for(&src_ref)?;
    let wasm = pull_extension_module(&src_registry, &src_ref, &reporter)
        .await
        .with_context(|| format!("reading the extension image {}", src_ref.whole()))?;
    let info = inspect_module(&wasm)
        .with_context(|| format!("checking the module in {}", src_ref.whole()))?;
    let image = build_image(&wasm, &info, ImageFormat::Compat, &[])?;
    let dst_registry = if dst_ref.resolve_registry() == src_ref.resolve_registry() {
        src_registry
    } else {
        settings.registry_for(&dst_ref)?
    };
    let digest = dst_registry
        .push(&dst_ref, &image, &reporter)
        .await
        .with_context(|| format!("pushing {}", dst_ref.whole()))?;
    printer.status(format!(
        "Converted {} into {} with /plugin.wasm",
        src_ref.whole(),
        dst_ref.whole()
    ));
    printer.result(digest);
    Ok(())
}
