//! Progress bars for registry transfers (the only place that uses indicatif).

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use weir_cli::oci::registry::Reporter;

use crate::printer::Printer;

/// Draws one bar per blob on stderr, or nothing when the printer hides progress.
#[derive(Debug)]
pub struct TransferReporter {
    printer: Printer,
    bars: MultiProgress,
    active: Mutex<Vec<ProgressBar>>,
}

impl TransferReporter {
    /// A reporter that draws only if `printer` allows progress bars.
    pub fn new(printer: Printer) -> Self {
        let target = if printer.progress() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        TransferReporter {
            printer,
            bars: MultiProgress::with_draw_target(target),
            active: Mutex::new(Vec::new()),
        }
    }

    fn bar(&self, id: usize) -> Option<ProgressBar> {
        self.active
            .lock()
            .ok()
            .and_then(|bars| bars.get(id).cloned())
    }
}

impl Reporter for TransferReporter {
    fn on_blob_start(&self, digest: &str, size: u64) -> usize {
        self.printer.detail(format!("blob {digest} ({size} bytes)"));
        let bar = self.bars.add(ProgressBar::new(size));
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>19} [{bar:30}] {bytes}/{total_bytes}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        let short = digest.strip_prefix("sha256:").unwrap_or(digest);
        bar.set_message(short.chars().take(12).collect::<String>());
        let Ok(mut bars) = self.active.lock() else {
            return 0;
        };
        bars.push(bar);
        bars.len() - 1
    }

    fn on_blob_progress(&self, id: usize, bytes: u64) {
        if let Some(bar) = self.bar(id) {
            bar.inc(bytes);
        }
    }

    fn on_blob_complete(&self, id: usize) {
        // Done bars disappear, so the status line that follows starts on a clean line.
        if let Some(bar) = self.bar(id) {
            bar.finish_and_clear();
        }
    }

    fn on_retry(&self, what: &str, attempt: u32, delay: Duration, error: &str) {
        let message = format!("{what} failed (attempt {attempt}): {error}; retrying in {delay:?}");
        if self.printer.progress() {
            let _ = self.bars.println(format!("warning: {message}"));
        } else {
            self.printer.warn(message);
        }
    }
}
