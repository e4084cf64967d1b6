//! The `log` facade, bridged to the host's log with the host's level.

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

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
    let filter = match hostcalls::get_log_level() {
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
        // Logging must never be the reason a plugin fails.
        let _ = hostcalls::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}
