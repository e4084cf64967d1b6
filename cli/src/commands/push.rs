//! `weir push`: module or layout → registry.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use weir_cli::input::load_module;
use weir_cli::oci::image::{build_image, PluginImage};
use weir_cli::oci::layout::read_layout;
use weir_cli::oci::registry::parse_reference;

use crate::args::PushArgs;
use crate::printer::Printer;
use crate::reporters::TransferReporter;
use crate::settings::registry_for;

pub(crate) async fn push(args: PushArgs, printer: Printer) -> Result<()> {
    let reference = parse_reference(&args.reference)?;
    let image = image_from_input(&args.input, &args)?;
    printer.detail(format!(
        "{} image, {} manifest {}",
        image.format,
        image.manifest_media_type,
        image.digest()
    ));
    let registry = registry_for(&args.registry, &reference)?;
    let reporter = TransferReporter::new(printer);
    let started = Instant::now();
    let digest = registry
        .push(&reference, &image, &reporter)
        .await
        .with_context(|| format!("pushing to {}", reference.whole()))?;
    printer.status(format!(
        "Pushed {} ({}) in {:.0?}",
        reference.whole(),
        image.format,
        started.elapsed()
    ));
    printer.result(digest);
    Ok(())
}

/// A layout (directory with index.json, or .tar) is pushed as is; anything else is packaged.
fn image_from_input(input: &Path, args: &PushArgs) -> Result<PluginImage> {
    let is_layout =
        input.join("index.json").is_file() || input.extension().is_some_and(|e| e == "tar");
    if is_layout {
        return read_layout(input)
            .with_context(|| format!("reading the image layout {}", input.display()));
    }
    let format = super::image_format(&args.image)?;
    let module = load_module(input)?;
    build_image(&module.wasm, &module.info, format, &args.image.root_ids)
}
