//! NETWORK (L4) connections through the probe plugin.

use weir_runtime::{Action, Phase};

use crate::probe;

#[test]
fn data_flows_both_ways_and_is_rewritten() {
    let plugin = probe().root_id("tcp").start().unwrap();
    let out = plugin
        .tcp()
        .downstream("hel")
        .downstream("lo\n")
        .upstream("reply")
        .run();
    assert_eq!(out.action(Phase::NewConnection), Some(Action::Continue));
    let downstream: Vec<Action> = out
        .actions()
        .iter()
        .filter(|(p, _)| *p == Phase::DownstreamData)
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(
        downstream,
        vec![Action::Pause(1), Action::Continue],
        "buffered until a newline"
    );
    assert_eq!(out.to_upstream(), b"HELLO\n");
    assert_eq!(out.to_downstream(), b"<reply");
    assert!(out.logged("new connection"));
    assert!(out.logged("upstream data: 5"));
    assert!(out.logged("downstream closed by 2"));
    assert!(!out.closed_by_plugin());
}

#[test]
fn plugin_can_close_the_connection() {
    let plugin = probe().root_id("tcp").start().unwrap();
    let mut connection = plugin.connection();
    connection.send_downstream(b"block me", false);
    connection.send_downstream(b"more", true);
    let out = connection.finish();
    assert!(out.closed_by_plugin());
    assert!(out.to_upstream().is_empty());
    assert!(out.logged("blocked"));
}
