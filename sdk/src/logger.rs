//! The `log` facade, bridged to the host's log with the host's level.
//!
//! Messages often carry what a client sent (a path, a header, a claim). Before a message
//! reaches the host, CR, LF and every other control character, and the Unicode line
//! separators and direction overrides, are written as escapes (`\n`, `\r`, `\t`, `\x1b`,
//! `\u{2028}`), so a client cannot end the line and forge one of its own, nor recolour or
//! reorder what an operator reads. Backslashes are left as they are.

use proxy_wasm::hostcalls;
use weir_abi::LogLevel;

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

/// Installs the logger. Safe to call more than once. There is no custom panic hook: std's
/// default hook already writes the panic message to stderr, which Envoy (and weir-runtime)
/// log at error level before the trap, and a second hook costs ~1.8 KB of every plugin.
pub(crate) fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// Matches `log`'s filter to the host's current level, so disabled levels cost nothing
/// (not even formatting). Envoy's level can change at run time; it is re-read at configure.
pub(crate) fn follow_host_level() {
    let filter = match hostcalls::get_log_level().map(crate::proxy_types::log_level) {
        Ok(LogLevel::Trace) => log::LevelFilter::Trace,
        Ok(LogLevel::Debug) => log::LevelFilter::Debug,
        Ok(LogLevel::Info) => log::LevelFilter::Info,
        Ok(LogLevel::Warn) => log::LevelFilter::Warn,
        Ok(LogLevel::Error) | Ok(LogLevel::Critical) => log::LevelFilter::Error,
        // An older host without the call: let the host filter.
        Err(_) => log::LevelFilter::Trace,
    };
    log::set_max_level(filter);
}

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        let message = record.args().to_string();
        // Logging must never be the reason a plugin fails.
        let _ = hostcalls::log(
            crate::proxy_types::to_log_level(level),
            &escape_controls(&message),
        );
    }

    fn flush(&self) {}
}

/// True for what must not reach a log line raw: control characters (C0, DEL, C1), the line
/// and paragraph separators, and the bidirectional overrides and isolates.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `message` with each character [`needs_escape`] picks written as an escape; borrowed
/// unchanged when there is none (the usual case).
pub(crate) fn escape_controls(message: &str) -> std::borrow::Cow<'_, str> {
    if !message.contains(needs_escape) {
        return message.into();
    }
    let mut out = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                // Hex by hand: `format!`'s integer formatting costs every plugin ~500 bytes.
                let code = c as u32;
                let digits = if code < 0x80 {
                    2
                } else {
                    (32 - code.leading_zeros()).div_ceil(4) as usize
                };
                out.push_str(if code < 0x80 { "\\x" } else { "\\u{" });
                for at in (0..digits).rev() {
                    out.push(char::from(
                        b"0123456789abcdef"[(code >> (4 * at)) as usize & 0xf],
                    ));
                }
                if code >= 0x80 {
                    out.push('}');
                }
            }
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn client_bytes_cannot_end_a_log_line() {
        assert_eq!(
            escape_controls("path=/a\n[warn] forged"),
            "path=/a\\n[warn] forged"
        );
        assert_eq!(
            escape_controls("a\r\nb\tc\x1b[31md\x7f"),
            "a\\r\\nb\\tc\\x1b[31md\\x7f"
        );
        assert_eq!(
            escape_controls("x\u{85}y\u{2028}z\u{202e}"),
            "x\\u{85}y\\u{2028}z\\u{202e}"
        );
        assert!(matches!(
            escape_controls("plain ünïcode \\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
