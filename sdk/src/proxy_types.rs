//! Where weir-abi's types meet proxy-wasm's: the one place they convert.
//!
//! The SDK speaks weir-abi, the one ABI definition it shares with weir-runtime: its own
//! constants (which map or buffer a type reads, a metric's kind, a context's type) and the
//! statuses in its errors are weir-abi's. proxy-wasm's `hostcalls` and traits take and
//! return proxy-wasm's enums, so they convert here, at the call. Both sides are the ABI's
//! `u32` values, so each conversion is total. proxy-wasm's `Action` and `PeerType` stay
//! as they are: they only appear in its trait methods' signatures, never in the SDK's own
//! definitions.

use proxy_wasm::types as proxy;
use weir_abi::{BufferType, ContextType, LogLevel, MapType, MetricType, Status};

/// A status proxy-wasm returned. A value weir-abi does not define (none today) reads as
/// `InternalFailure`.
pub(crate) fn status(status: proxy::Status) -> Status {
    Status::from_u32(status as u32).unwrap_or(Status::InternalFailure)
}

/// The log level proxy-wasm read from the host.
pub(crate) fn log_level(level: proxy::LogLevel) -> LogLevel {
    match level {
        proxy::LogLevel::Trace => LogLevel::Trace,
        proxy::LogLevel::Debug => LogLevel::Debug,
        proxy::LogLevel::Info => LogLevel::Info,
        proxy::LogLevel::Warn => LogLevel::Warn,
        proxy::LogLevel::Error => LogLevel::Error,
        proxy::LogLevel::Critical => LogLevel::Critical,
    }
}

/// A log level, for proxy-wasm's `hostcalls::log`.
pub(crate) fn to_log_level(level: LogLevel) -> proxy::LogLevel {
    match level {
        LogLevel::Trace => proxy::LogLevel::Trace,
        LogLevel::Debug => proxy::LogLevel::Debug,
        LogLevel::Info => proxy::LogLevel::Info,
        LogLevel::Warn => proxy::LogLevel::Warn,
        LogLevel::Error => proxy::LogLevel::Error,
        LogLevel::Critical => proxy::LogLevel::Critical,
    }
}

/// A header or metadata map, for proxy-wasm's `hostcalls`.
pub(crate) fn map_type(map: MapType) -> proxy::MapType {
    match map {
        MapType::HttpRequestHeaders => proxy::MapType::HttpRequestHeaders,
        MapType::HttpRequestTrailers => proxy::MapType::HttpRequestTrailers,
        MapType::HttpResponseHeaders => proxy::MapType::HttpResponseHeaders,
        MapType::HttpResponseTrailers => proxy::MapType::HttpResponseTrailers,
        MapType::GrpcReceiveInitialMetadata => proxy::MapType::GrpcReceiveInitialMetadata,
        MapType::GrpcReceiveTrailingMetadata => proxy::MapType::GrpcReceiveTrailingMetadata,
        MapType::HttpCallResponseHeaders => proxy::MapType::HttpCallResponseHeaders,
        MapType::HttpCallResponseTrailers => proxy::MapType::HttpCallResponseTrailers,
    }
}

/// A buffer, for proxy-wasm's `hostcalls`.
pub(crate) fn buffer_type(buffer: BufferType) -> proxy::BufferType {
    match buffer {
        BufferType::HttpRequestBody => proxy::BufferType::HttpRequestBody,
        BufferType::HttpResponseBody => proxy::BufferType::HttpResponseBody,
        BufferType::DownstreamData => proxy::BufferType::DownstreamData,
        BufferType::UpstreamData => proxy::BufferType::UpstreamData,
        BufferType::HttpCallResponseBody => proxy::BufferType::HttpCallResponseBody,
        BufferType::GrpcReceiveBuffer => proxy::BufferType::GrpcReceiveBuffer,
        BufferType::VmConfiguration => proxy::BufferType::VmConfiguration,
        BufferType::PluginConfiguration => proxy::BufferType::PluginConfiguration,
        BufferType::CallData => proxy::BufferType::CallData,
    }
}

/// A metric's kind, for proxy-wasm's `hostcalls::define_metric`.
pub(crate) fn metric_type(kind: MetricType) -> proxy::MetricType {
    match kind {
        MetricType::Counter => proxy::MetricType::Counter,
        MetricType::Gauge => proxy::MetricType::Gauge,
        MetricType::Histogram => proxy::MetricType::Histogram,
    }
}

/// A context's type, for proxy-wasm's `RootContext::get_type`.
pub(crate) fn context_type(context: ContextType) -> proxy::ContextType {
    match context {
        ContextType::HttpContext => proxy::ContextType::HttpContext,
        ContextType::StreamContext => proxy::ContextType::StreamContext,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every conversion keeps the ABI's number: a variant mapped to the wrong one fails.
    #[test]
    fn conversions_keep_the_abi_values() {
        for level in LogLevel::ALL {
            assert_eq!(to_log_level(*level) as u32, *level as u32);
            assert_eq!(log_level(to_log_level(*level)), *level);
        }
        for map in MapType::ALL {
            assert_eq!(map_type(*map) as u32, *map as u32);
        }
        for buffer in BufferType::ALL {
            assert_eq!(buffer_type(*buffer) as u32, *buffer as u32);
        }
        for kind in MetricType::ALL {
            assert_eq!(metric_type(*kind) as u32, *kind as u32);
        }
        for context in ContextType::ALL {
            assert_eq!(context_type(*context) as u32, *context as u32);
        }
        assert_eq!(status(proxy::Status::CasMismatch), Status::CasMismatch);
        assert_eq!(status(proxy::Status::Empty), Status::Empty);
    }
}
