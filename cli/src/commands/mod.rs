//! One file per verb; `run` dispatches. Adding a verb: a variant in `args::Command`, a file
//! here, and one match arm below.

mod exec;
mod manifest;
mod migrate;
mod package;
mod pull;
mod push;
mod run;
mod sign;

use weir_cli::oci::ImageFormat;

use crate::args::{Command, FormatArg, ImageArgs};
use crate::printer::Printer;

/// Runs one command.
pub async fn run(command: Command, printer: Printer) -> anyhow::Result<()> {
    match command {
        Command::Package(args) => package::package(args, printer),
        Command::Push(args) => push::push(args, printer).await,
        Command::Pull(args) => pull::pull(args, printer).await,
        Command::Manifest(args) => manifest::manifest(args, printer).await,
        Command::Migrate(args) => migrate::migrate(args, printer).await,
        Command::Sign(args) => sign::sign(args, printer).await,
        Command::Exec(args) => exec::exec(args, printer),
        Command::Run(args) => run::run(args, printer).await,
    }
}

/// The image shape the flags ask for.
fn image_format(args: &ImageArgs) -> ImageFormat {
    match (args.format, args.docker) {
        (_, true) => ImageFormat::Docker,
        (FormatArg::Compat, false) => ImageFormat::Compat,
        (FormatArg::Artifact, false) => ImageFormat::Artifact,
    }
}
