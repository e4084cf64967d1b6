//! `weir new`: a plugin crate from the hello (HTTP) or ip-allowlist (NETWORK) example.

use anyhow::Result;
use weir_cli::template::{self, Template, WeirSource};

use crate::args::NewArgs;
use crate::printer::Printer;

pub(crate) fn new(args: NewArgs, printer: Printer) -> Result<()> {
    let template = if args.network {
        Template::Network
    } else {
        Template::Http
    };
    let weir = match &args.weir_path {
        Some(dir) => WeirSource::checkout(dir)?,
        None => WeirSource::Registry,
    };
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| args.name.clone().into());
    let files = template::render(template, &args.name, &weir)?;
    template::write(&dir, &files)?;
    printer.status(format!(
        "Created {} (from the {} example) in {}",
        args.name,
        template.example(),
        dir.display()
    ));
    printer.result(format!(
        "cd {}\nrustup target add wasm32-wasip1   # once\ncargo test                        # the .wasm in weir-runtime\ncargo wasm                        # target/wasm32-wasip1/release/{}.wasm",
        dir.display(),
        args.name.replace('-', "_")
    ));
    Ok(())
}
