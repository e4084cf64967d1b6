//! `weir package`: module → OCI image layout on disk.

use anyhow::{Context, Result};
use weir_cli::input::load_module;
use weir_cli::oci::{image, layout};

use crate::args::PackageArgs;
use crate::printer::Printer;

pub(crate) fn package(args: PackageArgs, printer: Printer) -> Result<()> {
    let format = super::image_format(&args.image)?;
    let module = load_module(&args.input)?;
    let image = image::build_image(&module.wasm, &module.info, format, &args.image.root_ids)?;
    let is_tar = args.output.extension().is_some_and(|e| e == "tar");
    if is_tar {
        layout::write_layout_tar(&image, &args.tag, &args.output)
    } else {
        layout::write_layout_dir(&image, &args.tag, &args.output)
    }
    .with_context(|| format!("writing the image layout {}", args.output.display()))?;
    printer.status(format!(
        "Packaged {} as {format} into {}",
        module.path.display(),
        args.output.display()
    ));
    printer.result(image.digest());
    Ok(())
}
