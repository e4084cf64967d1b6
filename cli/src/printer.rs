//! Where output goes: results to stdout, status lines and progress to stderr.

use std::io::IsTerminal;

/// Decides what the user sees on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    quiet: bool,
    verbose: bool,
    progress: bool,
}

impl Printer {
    /// From the global flags; progress bars also need stderr to be a terminal.
    pub fn new(quiet: bool, no_progress: bool, verbose: bool) -> Self {
        let progress = !quiet && !no_progress && !verbose && std::io::stderr().is_terminal();
        Printer {
            quiet,
            verbose: verbose && !quiet,
            progress,
        }
    }

    /// A detail line on stderr, only with `-v`.
    pub fn detail(&self, message: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("  {message}");
        }
    }

    /// Whether progress bars should be drawn.
    pub fn progress(&self) -> bool {
        self.progress
    }

    /// A status line on stderr, unless `-q`.
    pub fn status(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A warning on stderr (shown even with `-q`).
    pub fn warn(&self, message: impl std::fmt::Display) {
        eprintln!("warning: {message}");
    }

    /// A result on stdout.
    pub fn result(&self, message: impl std::fmt::Display) {
        println!("{message}");
    }
}
