//! The names guest and host link by: the host functions a guest imports from
//! [`HOST_MODULE`](crate::HOST_MODULE) and the callbacks the host calls on the guest's
//! exports.

/// Declares an enum of ABI names with `as_str`, `ALL` and a lookup by name.
macro_rules! abi_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Copy, Clone, Eq, PartialEq, Ord, PartialOrd, Hash, Debug)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every name, in the order of the specification.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name as it appears in a module's imports or exports.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            /// The entry with this name, `None` for names the ABI does not define.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

abi_names! {
    /// A host function of module `env`: those of ABI 0.2.1 ([`HOST_FUNCTIONS_0_2_1`]), then
    /// the four only ABI 0.1.0 has.
    HostFunction {
        /// `proxy_done`.
        Done = "proxy_done",
        /// `proxy_set_effective_context`.
        SetEffectiveContext = "proxy_set_effective_context",
        /// `proxy_log`.
        Log = "proxy_log",
        /// `proxy_get_log_level` (ABI 0.2.1 only).
        GetLogLevel = "proxy_get_log_level",
        /// `proxy_get_current_time_nanoseconds`.
        GetCurrentTimeNanoseconds = "proxy_get_current_time_nanoseconds",
        /// `proxy_set_tick_period_milliseconds`.
        SetTickPeriodMilliseconds = "proxy_set_tick_period_milliseconds",
        /// `proxy_set_buffer_bytes`.
        SetBufferBytes = "proxy_set_buffer_bytes",
        /// `proxy_get_buffer_bytes`.
        GetBufferBytes = "proxy_get_buffer_bytes",
        /// `proxy_get_buffer_status`.
        GetBufferStatus = "proxy_get_buffer_status",
        /// `proxy_get_header_map_size`.
        GetHeaderMapSize = "proxy_get_header_map_size",
        /// `proxy_get_header_map_pairs`.
        GetHeaderMapPairs = "proxy_get_header_map_pairs",
        /// `proxy_set_header_map_pairs`.
        SetHeaderMapPairs = "proxy_set_header_map_pairs",
        /// `proxy_get_header_map_value`.
        GetHeaderMapValue = "proxy_get_header_map_value",
        /// `proxy_add_header_map_value`.
        AddHeaderMapValue = "proxy_add_header_map_value",
        /// `proxy_replace_header_map_value`.
        ReplaceHeaderMapValue = "proxy_replace_header_map_value",
        /// `proxy_remove_header_map_value`.
        RemoveHeaderMapValue = "proxy_remove_header_map_value",
        /// `proxy_continue_stream` (ABI 0.2.x).
        ContinueStream = "proxy_continue_stream",
        /// `proxy_close_stream` (ABI 0.2.x).
        CloseStream = "proxy_close_stream",
        /// `proxy_get_status`.
        GetStatus = "proxy_get_status",
        /// `proxy_send_local_response`.
        SendLocalResponse = "proxy_send_local_response",
        /// `proxy_http_call`.
        HttpCall = "proxy_http_call",
        /// `proxy_grpc_call`.
        GrpcCall = "proxy_grpc_call",
        /// `proxy_grpc_stream`.
        GrpcStream = "proxy_grpc_stream",
        /// `proxy_grpc_send`.
        GrpcSend = "proxy_grpc_send",
        /// `proxy_grpc_cancel`.
        GrpcCancel = "proxy_grpc_cancel",
        /// `proxy_grpc_close`.
        GrpcClose = "proxy_grpc_close",
        /// `proxy_set_shared_data`.
        SetSharedData = "proxy_set_shared_data",
        /// `proxy_get_shared_data`.
        GetSharedData = "proxy_get_shared_data",
        /// `proxy_register_shared_queue`.
        RegisterSharedQueue = "proxy_register_shared_queue",
        /// `proxy_resolve_shared_queue`.
        ResolveSharedQueue = "proxy_resolve_shared_queue",
        /// `proxy_enqueue_shared_queue`.
        EnqueueSharedQueue = "proxy_enqueue_shared_queue",
        /// `proxy_dequeue_shared_queue`.
        DequeueSharedQueue = "proxy_dequeue_shared_queue",
        /// `proxy_define_metric`.
        DefineMetric = "proxy_define_metric",
        /// `proxy_record_metric`.
        RecordMetric = "proxy_record_metric",
        /// `proxy_increment_metric`.
        IncrementMetric = "proxy_increment_metric",
        /// `proxy_get_metric`.
        GetMetric = "proxy_get_metric",
        /// `proxy_get_property`.
        GetProperty = "proxy_get_property",
        /// `proxy_set_property`.
        SetProperty = "proxy_set_property",
        /// `proxy_call_foreign_function`.
        CallForeignFunction = "proxy_call_foreign_function",
        /// `proxy_get_configuration` (ABI 0.1.0 only).
        GetConfiguration = "proxy_get_configuration",
        /// `proxy_continue_request` (ABI 0.1.0 only).
        ContinueRequest = "proxy_continue_request",
        /// `proxy_continue_response` (ABI 0.1.0 only).
        ContinueResponse = "proxy_continue_response",
        /// `proxy_clear_route_cache` (ABI 0.1.0 only).
        ClearRouteCache = "proxy_clear_route_cache",
    }
}

/// Every host function of ABI 0.2.1, in the order of the specification.
pub const HOST_FUNCTIONS_0_2_1: &[HostFunction] = HostFunction::ALL.split_at(39).0;

abi_names! {
    /// A guest export the host calls: the `proxy_on_*` callbacks, and the allocator through
    /// which the host hands data to the guest.
    Callback {
        /// `proxy_on_memory_allocate`: the guest's allocator (Envoy prefers an exported
        /// `malloc`).
        MemoryAllocate = "proxy_on_memory_allocate",
        /// `proxy_on_context_create`.
        ContextCreate = "proxy_on_context_create",
        /// `proxy_on_vm_start`.
        VmStart = "proxy_on_vm_start",
        /// `proxy_on_configure`.
        Configure = "proxy_on_configure",
        /// `proxy_on_tick`.
        Tick = "proxy_on_tick",
        /// `proxy_on_queue_ready`.
        QueueReady = "proxy_on_queue_ready",
        /// `proxy_on_new_connection`.
        NewConnection = "proxy_on_new_connection",
        /// `proxy_on_downstream_data`.
        DownstreamData = "proxy_on_downstream_data",
        /// `proxy_on_upstream_data`.
        UpstreamData = "proxy_on_upstream_data",
        /// `proxy_on_downstream_connection_close`.
        DownstreamConnectionClose = "proxy_on_downstream_connection_close",
        /// `proxy_on_upstream_connection_close`.
        UpstreamConnectionClose = "proxy_on_upstream_connection_close",
        /// `proxy_on_request_headers`.
        RequestHeaders = "proxy_on_request_headers",
        /// `proxy_on_request_body`.
        RequestBody = "proxy_on_request_body",
        /// `proxy_on_request_trailers`.
        RequestTrailers = "proxy_on_request_trailers",
        /// `proxy_on_response_headers`.
        ResponseHeaders = "proxy_on_response_headers",
        /// `proxy_on_response_body`.
        ResponseBody = "proxy_on_response_body",
        /// `proxy_on_response_trailers`.
        ResponseTrailers = "proxy_on_response_trailers",
        /// `proxy_on_http_call_response`.
        HttpCallResponse = "proxy_on_http_call_response",
        /// `proxy_on_grpc_receive_initial_metadata`.
        GrpcReceiveInitialMetadata = "proxy_on_grpc_receive_initial_metadata",
        /// `proxy_on_grpc_receive`.
        GrpcReceive = "proxy_on_grpc_receive",
        /// `proxy_on_grpc_receive_trailing_metadata`.
        GrpcReceiveTrailingMetadata = "proxy_on_grpc_receive_trailing_metadata",
        /// `proxy_on_grpc_close`.
        GrpcClose = "proxy_on_grpc_close",
        /// `proxy_on_done`.
        Done = "proxy_on_done",
        /// `proxy_on_log`.
        Log = "proxy_on_log",
        /// `proxy_on_delete`.
        Delete = "proxy_on_delete",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for function in HostFunction::ALL {
            assert_eq!(HostFunction::from_name(function.as_str()), Some(*function));
        }
        for callback in Callback::ALL {
            assert_eq!(Callback::from_name(callback.as_str()), Some(*callback));
            assert!(callback.as_str().starts_with("proxy_on_"));
        }
        assert_eq!(HostFunction::from_name("proxy_on_tick"), None);
        assert_eq!(Callback::from_name("proxy_log"), None);
    }

    #[test]
    fn abi_0_2_1_has_39_host_functions_and_none_of_0_1_0_only() {
        assert_eq!(HOST_FUNCTIONS_0_2_1.len(), 39);
        assert_eq!(
            HOST_FUNCTIONS_0_2_1.last(),
            Some(&HostFunction::CallForeignFunction)
        );
        assert!(!HOST_FUNCTIONS_0_2_1.contains(&HostFunction::GetConfiguration));
        assert_eq!(HostFunction::ALL.len(), 43);
    }
}
