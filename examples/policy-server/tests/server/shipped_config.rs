//! The example files in config/ that the README points to must stay valid.

use std::path::Path;

fn config_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
}

#[test]
fn example_config_and_acl_load() {
    let config = policy_server::Config::load(&config_dir().join("policy-server.yaml")).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8181");
    let acl = policy_server::Acl::load(config.acl_file.as_deref().unwrap()).unwrap();
    let grants = acl.grants_for("bob", &["readers".to_string()]);
    assert!(grants.functions.contains("read_data"));
}

#[cfg(feature = "rego")]
#[test]
fn example_rego_policy_compiles_and_decides() {
    let policy = policy_server::RegoPolicy::from_config(&policy_server::RegoConfig {
        policies: vec![config_dir().join("policy.rego")],
        data_file: None,
        rule: "data.weir.grants".into(),
        timeout_ms: 1000,
    })
    .unwrap();
    let input = serde_json::json!({
        "subject": "bob", "groups": ["readers", "writers"], "claims": {},
        "method": "GET", "uri": "/", "host": "app.test",
    });
    let grants = policy.evaluate(&input).unwrap();
    assert_eq!(grants.functions.iter().collect::<Vec<_>>(), ["read_data"]);
    assert_eq!(grants.files.iter().collect::<Vec<_>>(), ["/home/bob"]);
}
