//! Proxy-Wasm ABI 0.2.1: the names, numbers and byte layouts that guest and host agree on.
//!
//! One definition shared by the Weir guest SDK (`weir`) and the embedded host
//! (`weir-runtime`), so the two can never disagree about a function's name, a status code
//! or a map layout: [`HostFunction`] and [`Callback`] name what each side links by.
//! `#![no_std]` with `alloc`, no dependencies.
//!
//! ```
//! use weir_abi::{wire, MapType, Status};
//!
//! // A header map as the host hands it to the guest…
//! let bytes = wire::try_encode_map([(":path", "/p"), ("x-id", "7")]).unwrap();
//! // …and read back without copying, malformed input being an error, never a panic.
//! let pairs = wire::decode_map(&bytes).unwrap();
//! assert_eq!(pairs[1], (&b"x-id"[..], &b"7"[..]));
//! assert!(wire::decode_map(&bytes[..9]).is_err());
//!
//! // Enums convert from the raw `u32` a guest passes, unknown values being `None`.
//! assert_eq!(MapType::from_u32(2), Some(MapType::HttpResponseHeaders));
//! assert_eq!(MapType::from_u32(99), None);
//! assert_eq!(Status::CasMismatch as u32, 8);
//! ```
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

mod names;
pub mod wire;

pub use names::{Callback, HostFunction, HOST_FUNCTIONS_0_2_1};

/// Name of the export by which a module declares ABI 0.2.1.
pub const ABI_VERSION_0_2_1: &str = "proxy_abi_version_0_2_1";
/// Name of the export by which a module declares ABI 0.2.0.
pub const ABI_VERSION_0_2_0: &str = "proxy_abi_version_0_2_0";
/// Name of the export by which a module declares ABI 0.1.0.
pub const ABI_VERSION_0_1_0: &str = "proxy_abi_version_0_1_0";
/// Import module of the proxy-wasm host functions.
pub const HOST_MODULE: &str = "env";
/// Import module of the WASI preview1 functions proxy-wasm guests use.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Declares a `#[repr(u32)]` ABI enum with a checked conversion from the raw value.
macro_rules! abi_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr,)+ }) => {
        $(#[$meta])*
        #[repr(u32)]
        #[derive(Copy, Clone, Eq, PartialEq, Ord, PartialOrd, Hash, Debug)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $name {
            /// Every value, in ABI order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The variant with this raw value, `None` for values the ABI does not define.
            pub const fn from_u32(raw: u32) -> Option<Self> {
                match raw {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                value as u32
            }
        }
    };
}

abi_enum! {
    /// `proxy_status_t`: the result of every host function.
    Status {
        /// Success.
        Ok = 0,
        /// The key, property, queue or context does not exist.
        NotFound = 1,
        /// An argument is out of range or names something unknown (e.g. an unknown cluster).
        BadArgument = 2,
        /// The host could not serialize a value.
        SerializationFailure = 3,
        /// The host could not parse guest data.
        ParseFailure = 4,
        /// A pointer or size the guest passed is outside its memory.
        InvalidMemoryAccess = 6,
        /// A queue is empty.
        Empty = 7,
        /// Compare-and-swap token mismatch on shared data.
        CasMismatch = 8,
        /// The host failed internally.
        InternalFailure = 10,
        /// The host does not implement this call.
        Unimplemented = 12,
    }
}

abi_enum! {
    /// `proxy_log_level_t`.
    LogLevel {
        /// Trace.
        Trace = 0,
        /// Debug.
        Debug = 1,
        /// Info.
        Info = 2,
        /// Warn.
        Warn = 3,
        /// Error.
        Error = 4,
        /// Critical (Rust guests log their panic message at this level).
        Critical = 5,
    }
}

abi_enum! {
    /// `proxy_action_t` as the SDKs name it. Envoy reads a header callback's value as its
    /// `FilterHeadersStatus` (0–4) and a body callback's as `FilterDataStatus` (0–3): any
    /// value but `Continue` holds the stream.
    Action {
        /// Continue processing.
        Continue = 0,
        /// Pause until `proxy_continue_stream`.
        Pause = 1,
    }
}

abi_enum! {
    /// `proxy_buffer_type_t`.
    BufferType {
        /// HTTP request body chunk.
        HttpRequestBody = 0,
        /// HTTP response body chunk.
        HttpResponseBody = 1,
        /// L4 data from the downstream peer.
        DownstreamData = 2,
        /// L4 data from the upstream peer.
        UpstreamData = 3,
        /// Body of an `proxy_http_call` response.
        HttpCallResponseBody = 4,
        /// gRPC message.
        GrpcReceiveBuffer = 5,
        /// VM configuration (`vm_config.configuration`).
        VmConfiguration = 6,
        /// Plugin configuration (`configuration`).
        PluginConfiguration = 7,
        /// Arguments of a foreign function call.
        CallData = 8,
    }
}

abi_enum! {
    /// `proxy_map_type_t`.
    MapType {
        /// HTTP request headers.
        HttpRequestHeaders = 0,
        /// HTTP request trailers.
        HttpRequestTrailers = 1,
        /// HTTP response headers.
        HttpResponseHeaders = 2,
        /// HTTP response trailers.
        HttpResponseTrailers = 3,
        /// gRPC initial metadata.
        GrpcReceiveInitialMetadata = 4,
        /// gRPC trailing metadata.
        GrpcReceiveTrailingMetadata = 5,
        /// Headers of an `proxy_http_call` response.
        HttpCallResponseHeaders = 6,
        /// Trailers of an `proxy_http_call` response.
        HttpCallResponseTrailers = 7,
    }
}

abi_enum! {
    /// `proxy_peer_type_t`: who closed an L4 connection.
    PeerType {
        /// Unknown.
        Unknown = 0,
        /// The proxy closed it.
        Local = 1,
        /// The peer closed it.
        Remote = 2,
    }
}

abi_enum! {
    /// `proxy_stream_type_t`.
    StreamType {
        /// HTTP request direction.
        HttpRequest = 0,
        /// HTTP response direction.
        HttpResponse = 1,
        /// L4 downstream direction.
        Downstream = 2,
        /// L4 upstream direction.
        Upstream = 3,
    }
}

abi_enum! {
    /// `proxy_metric_type_t`.
    MetricType {
        /// Monotonic counter.
        Counter = 0,
        /// Gauge, settable.
        Gauge = 1,
        /// Histogram, record-only.
        Histogram = 2,
    }
}

abi_enum! {
    /// Kind of stream context the SDKs create (`proxy-wasm` `ContextType`).
    ContextType {
        /// An HTTP stream context.
        HttpContext = 0,
        /// An L4 stream context.
        StreamContext = 1,
    }
}

/// WASI preview1 `errno` values a proxy-wasm host returns.
pub mod errno {
    /// Success.
    pub const SUCCESS: u16 = 0;
    /// Bad file descriptor.
    pub const BADF: u16 = 8;
    /// Bad address (pointer outside guest memory).
    pub const FAULT: u16 = 21;
    /// Invalid argument.
    pub const INVAL: u16 = 28;
    /// Function not implemented.
    pub const NOSYS: u16 = 52;
    /// Not supported.
    pub const NOTSUP: u16 = 58;
}
