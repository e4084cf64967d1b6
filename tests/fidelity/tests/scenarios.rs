//! Every scenario under `scenarios/`, each run on weir-runtime and on Envoy (one Envoy per
//! scenario; cargo's test threads run several at once).

use std::collections::BTreeSet;

use anyhow::Result;
use weir_fidelity_tests::{check, scenario_dir};

fn run(name: &str) -> Result<()> {
    let report = check(format!("scenarios/{name}.json"))?;
    // Timings show in `cargo test -- --nocapture`; they go in the README's table.
    eprintln!(
        "{name}: weir-runtime {:?}, Envoy {:?}",
        report.runtime_time, report.envoy_time
    );
    Ok(())
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() -> Result<()> {
                run(stringify!($name))
            }
        )*
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

scenarios! {
    header_append_actions,
    header_append_removals,
    header_append_flat_form,
    header_append_multi_valued,
    header_append_rejected_config,
    ip_allowlist_allowed,
    ip_allowlist_denied,
    exerciser_headers_and_state,
    exerciser_timer,
    exerciser_body,
    exerciser_callout_allows,
    exerciser_callout_denies,
    exerciser_callout_unknown_cluster,
    exerciser_local_reply,
    exerciser_panic,
    exerciser_rejected_config,
    abi_0_1_0_headers,
    abi_0_1_0_continue_request,
    abi_0_1_0_local_reply,
    abi_0_2_0_headers,
    abi_9_9_9_refused,
    abi_mismatched_import_refused,
    both_allocators_malloc_preferred,
    exerciser_resume_from_tick,
    exerciser_resume_from_queue,
    exerciser_header_maps_continued,
    exerciser_header_maps_resumed,
    exerciser_metric_edges,
    exerciser_header_order,
    exerciser_body_splice,
    exerciser_log_panic,
    exerciser_callout_body,
    exerciser_callout_huge_timeout,
    exerciser_resolve_queue_vm_id,
    exerciser_foreign_functions,
    exerciser_startup_vms,
    exerciser_callout_refused,
    exerciser_stream_statuses,
    exerciser_props_upstream,
    exerciser_props_local_request,
    exerciser_props_local_response,
    exerciser_props_upstream_reset,
    exerciser_props_route_timeout,
    exerciser_log_client_gone,
    exerciser_callout_no_host,
    exerciser_callout_unframed,
    exerciser_callout_chunked,
    exerciser_foreign_edges,
    exerciser_props_upstream_refused,
    exerciser_props_idle_timeout,
    // Trailers: HTTP/2 from the client to Envoy and from Envoy to the upstream.
    exerciser_trailers_pass,
    exerciser_trailers_add,
    exerciser_trailers_held,
    exerciser_trailers_buffered_body,
    exerciser_trailers_no_body,
    // gRPC: a real gRPC server (tonic) behind an HTTP/2 cluster in Envoy.
    exerciser_grpc_unary,
    exerciser_grpc_error,
    exerciser_grpc_timeout,
    exerciser_grpc_server_streaming,
    exerciser_grpc_stream_error,
    exerciser_grpc_cancel,
    exerciser_grpc_edges,
}

/// A scenario file without a test above would silently never run.
#[test]
fn every_scenario_file_has_a_test() -> Result<()> {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(scenario_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            files.insert(
                path.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    let listed: BTreeSet<String> = LISTED.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        files, listed,
        "add each scenario file to the scenarios! list (and only those)"
    );
    Ok(())
}
