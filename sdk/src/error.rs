//! Errors as values: every host call returns [`Result`], and a hook that returns `Err`
//! becomes a local reply plus a log line instead of a trap.

use std::borrow::Cow;
use std::fmt;

use weir_abi::HostFunction;
pub use weir_abi::Status as HostStatus;

/// The result type of every fallible SDK call and of every filter hook.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Something went wrong in a plugin: a host call failed, or the plugin said so.
///
/// `Error` converts from any [`std::error::Error`], so `?` works on serde, parsing and
/// I/O errors inside hooks.
pub struct Error {
    kind: Kind,
}

enum Kind {
    /// The host answered a call with a status other than `Ok`.
    Host {
        /// The call's ABI name, taken when the error is made: only the names of calls a
        /// plugin makes end up in its `.wasm`, not weir-abi's whole table (1.4 KB).
        call: &'static str,
        status: HostStatus,
    },
    /// Anything else: a message and, optionally, its cause.
    Message {
        msg: Cow<'static, str>,
        source: Option<Box<dyn std::error::Error + 'static>>,
    },
}

impl Error {
    /// An error with a message of the plugin's choosing.
    pub fn msg(msg: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind: Kind::Message {
                msg: msg.into(),
                source: None,
            },
        }
    }

    /// A host call failed; `call` names the ABI call so logs say what was attempted.
    #[inline(always)]
    pub fn host(call: HostFunction, status: HostStatus) -> Self {
        Error {
            kind: Kind::Host {
                call: call.as_str(),
                status,
            },
        }
    }

    /// The host's status, when the error came from a host call.
    pub fn host_status(&self) -> Option<HostStatus> {
        match self.kind {
            Kind::Host { status, .. } => Some(status),
            Kind::Message { .. } => None,
        }
    }

    /// Wraps this error with more context, keeping the original as its cause.
    pub fn context(self, msg: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind: Kind::Message {
                msg: msg.into(),
                source: Some(Box::new(Chained(self))),
            },
        }
    }
}

/// Lets an [`Error`] sit in a `source()` chain without `Error` itself implementing
/// `std::error::Error` (which would conflict with the blanket `From` below, as in anyhow).
struct Chained(Error);

impl fmt::Debug for Chained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
impl fmt::Display for Chained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
impl std::error::Error for Chained {}

impl<E: std::error::Error + 'static> From<E> for Error {
    fn from(err: E) -> Self {
        // Flatten the cause chain into the message now: the error is rarely inspected later,
        // and this keeps `Error` free of lifetimes and `Send` bounds.
        let mut msg = err.to_string();
        let mut next = err.source();
        while let Some(cause) = next {
            msg.push_str(": ");
            msg.push_str(&cause.to_string());
            next = cause.source();
        }
        Error {
            kind: Kind::Message {
                msg: Cow::Owned(msg),
                source: None,
            },
        }
    }
}

impl fmt::Display for Error {
    /// Prints the whole chain on one line: `outer: inner: root cause`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            // Status names by hand: a derived Debug here would be one more formatting path
            // in every plugin.
            Kind::Host { call, status } => {
                write!(f, "host call {} failed: {}", call, status_name(*status))
            }
            Kind::Message { msg, source } => {
                f.write_str(msg)?;
                let mut next = source.as_deref();
                while let Some(cause) = next {
                    write!(f, ": {cause}")?;
                    next = cause.source();
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "weir::Error({self})")
    }
}

fn status_name(status: HostStatus) -> &'static str {
    match status {
        HostStatus::Ok => "Ok",
        HostStatus::NotFound => "NotFound",
        HostStatus::BadArgument => "BadArgument",
        HostStatus::SerializationFailure => "SerializationFailure",
        HostStatus::ParseFailure => "ParseFailure",
        HostStatus::InvalidMemoryAccess => "InvalidMemoryAccess",
        HostStatus::Empty => "Empty",
        HostStatus::CasMismatch => "CasMismatch",
        HostStatus::InternalFailure => "InternalFailure",
        HostStatus::Unimplemented => "Unimplemented",
    }
}

/// Turns the status a proxy-wasm `hostcalls` function returned into an [`Error`] that
/// names the call.
pub(crate) trait HostResult<T> {
    fn host(self, call: HostFunction) -> Result<T>;
}

impl<T> HostResult<T> for std::result::Result<T, proxy_wasm::types::Status> {
    #[inline(always)]
    fn host(self, call: HostFunction) -> Result<T> {
        self.map_err(|status| Error::host(call, crate::proxy_types::status(status)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_walks_the_chain() {
        let parse = "x".parse::<u16>().unwrap_err();
        let err = Error::from(parse).context("reading x-retries");
        assert_eq!(
            err.to_string(),
            "reading x-retries: invalid digit found in string"
        );
    }

    #[test]
    fn host_errors_name_the_call() {
        let err = Error::host(HostFunction::GetHeaderMapValue, HostStatus::NotFound);
        assert_eq!(err.host_status(), Some(HostStatus::NotFound));
        assert!(err.to_string().contains("proxy_get_header_map_value"));
    }
}
