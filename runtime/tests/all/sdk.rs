//! The Weir SDK as a host sees it (guest: test-plugins/sdk-guest): shared data namespaced by
//! plugin when plugins share a VM id, and log lines a client cannot split.

use weir_runtime::{LogLevel, Outcome, Plugin, PluginBuilder, Request, Response};

use crate::probe;

pub(crate) fn sdk_guest() -> PluginBuilder {
    Plugin::build(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test-plugins/sdk-guest"
    ))
}

pub(crate) fn ask(plugin: &Plugin, path: &str) -> Outcome {
    let out = plugin.http().request(Request::get(path)).run();
    assert!(out.trap().is_none(), "{:?}", out.trap());
    out
}

fn holds(plugin: &Plugin) -> String {
    let out = ask(plugin, "/?get");
    let line = out
        .logs_at(LogLevel::Info)
        .into_iter()
        .find(|l| l.starts_with("k holds"))
        .map(str::to_owned);
    line.unwrap_or_else(|| panic!("no answer: {:?}", out.logs()))
}

#[test]
fn plugins_in_one_vm_id_do_not_see_each_others_sdk_keys() {
    // Istio gives every WasmPlugin the empty VM id: one shared-data store for all of them.
    let a = sdk_guest()
        .name("team-a.guest")
        .root_id("guest")
        .start()
        .unwrap();
    let b = sdk_guest()
        .name("team-b.guest")
        .root_id("guest")
        .same_vm_id_as(&a)
        .start()
        .unwrap();
    ask(&a, "/?set=from-a");
    assert_eq!(holds(&b), "k holds None", "b must not read a's key");
    ask(&b, "/?set=from-b");
    assert_eq!(
        holds(&a),
        "k holds Some(\"from-a\")",
        "b's write must not replace a's value"
    );
    assert_eq!(holds(&b), "k holds Some(\"from-b\")");
    // Both values are in the one store, each under its plugin's namespace.
    assert_eq!(
        a.shared_data("weir:12:team-a.guest:5:guest:k"),
        Some(b"from-a".to_vec())
    );
    assert_eq!(
        a.shared_data("weir:12:team-b.guest:5:guest:k"),
        Some(b"from-b".to_vec())
    );

    // The same name and root id is the same plugin (say, after a reconfiguration): it
    // sees its key, so the store really is shared.
    let a_again = sdk_guest()
        .name("team-a.guest")
        .root_id("guest")
        .same_vm_id_as(&a)
        .start()
        .unwrap();
    assert_eq!(holds(&a_again), "k holds Some(\"from-a\")");
}

#[test]
fn a_plugin_writing_plain_keys_cannot_plant_a_value_for_an_sdk_plugin() {
    let sdk = sdk_guest()
        .name("ns.guest")
        .root_id("guest")
        .start()
        .unwrap();
    ask(&sdk, "/?set=genuine");
    let raw = probe()
        .name("ns.probe")
        .same_vm_id_as(&sdk)
        .start()
        .unwrap();
    raw.http()
        .request(
            Request::get("/")
                .header("x-probe", "shared")
                .header("x-value", "planted"),
        )
        .run();
    assert_eq!(
        sdk.shared_data("k"),
        Some(b"planted".to_vec()),
        "the raw write reached the shared store"
    );
    assert_eq!(holds(&sdk), "k holds Some(\"genuine\")");
}

#[test]
fn a_client_cannot_forge_a_log_line_through_the_sdk_logger() {
    let plugin = sdk_guest().root_id("guest").start().unwrap();
    let out = ask(
        &plugin,
        "/?log=%0A%5Bwarn%5D%20forged%0D%1B%5B31m%E2%80%A8end",
    );
    let lines: Vec<&str> = out
        .logs_at(LogLevel::Info)
        .into_iter()
        .filter(|l| l.starts_with("client sent"))
        .collect();
    assert_eq!(
        lines,
        [r"client sent: \n[warn] forged\r\x1b[31m\u{2028}end"]
    );
    for entry in out.logs() {
        assert!(
            !entry.message.contains(['\n', '\r', '\u{1b}', '\u{2028}']),
            "{:?}",
            entry.message
        );
    }
}

#[test]
fn an_oversize_callout_body_is_an_error_and_never_reaches_guest_memory() {
    // 8 MiB of body against a 4 MiB memory limit: reading it whole would trap.
    let plugin = sdk_guest()
        .root_id("guest")
        .memory_limit(4 << 20)
        .upstream("big", |_| Response::status(200).body(vec![b'x'; 8 << 20]))
        .start()
        .unwrap();
    for (path, expected) in [
        (
            "/?call",
            "call failed: callout response body is 8388608 bytes, over the 1048576-byte limit",
        ),
        (
            "/?call=16",
            "call failed: callout response body is 8388608 bytes, over the 16-byte limit",
        ),
    ] {
        let out = ask(&plugin, path);
        assert!(out.logged(expected), "{path}: {:?}", out.logs());
    }
    let small = sdk_guest()
        .root_id("guest")
        .upstream("big", |_| Response::status(200).body("12345"))
        .start()
        .unwrap();
    assert!(ask(&small, "/?call=5").logged("call body 5 bytes"));
    assert!(ask(&small, "/?call=4").logged("over the 4-byte limit"));
}
