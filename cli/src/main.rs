//! The `weir` binary: parses arguments, runs one command, prints errors with their causes.

mod args;
mod commands;
mod diagnostics;
mod printer;
mod reporters;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::printer::Printer;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                diagnostics::EXIT_USAGE as u8
            } else {
                0
            });
        }
    };
    let printer = Printer::new(cli.global.quiet, cli.global.no_progress, cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(diagnostics::EXIT_UNEXPECTED as u8);
        }
    };
    match runtime.block_on(commands::run(cli.command, printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let diagnosis = diagnostics::diagnose(&err);
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  Caused by: {cause}");
            }
            for hint in &diagnosis.hints {
                eprintln!("hint: {hint}");
            }
            if diagnosis.exit_code == diagnostics::EXIT_UNEXPECTED {
                eprintln!("hint: this looks like a bug or an environment problem; rerun with -v and report it");
            }
            ExitCode::from(diagnosis.exit_code as u8)
        }
    }
}
