//! One file per verb; `run` dispatches. Adding a verb: a variant in `args::Command`, a file
//! here, and one match arm below.

mod exec;
mod manifest;
mod migrate;
mod new;
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
        Command::New(args) => new::new(args, printer),
    }
}

/// The image shape the flags ask for. `--docker` picks Docker schema2 media types for the
/// compat shape (with or without `--format compat`); the artifact shape has no Docker form.
fn image_format(args: &ImageArgs) -> anyhow::Result<ImageFormat> {
    match (args.format, args.docker) {
        (FormatArg::Compat, true) => Ok(ImageFormat::Docker),
        (FormatArg::Compat, false) => Ok(ImageFormat::Compat),
        (FormatArg::Artifact, false) => Ok(ImageFormat::Artifact),
        (FormatArg::Artifact, true) => Err(weir_cli::UserError(
            "--docker applies to the compat format only (Docker schema2 has no artifact form): \
             drop --docker, or use --format compat"
                .into(),
        )
        .into()),
    }
}
