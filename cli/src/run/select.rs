//! Which WasmPlugins apply to the workload, and where in the filter chain they go, as
//! istiod decides it.

use super::filter::FilterKind;
use super::plugin::Plugin;
use super::workload::{Direction, Workload};

/// One entry of a filter chain, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A WasmPlugin: index into the plugin list.
    Plugin(usize),
    /// `envoy.filters.http.jwt_authn` (the workload has a JWT rule).
    JwtAuthn,
    /// `envoy.filters.http.rbac` (the workload has an authorization rule).
    Rbac,
}

/// The filter chains for the workload, and why other plugins were left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// HTTP filters before the router.
    pub http: Vec<Slot>,
    /// Network filters before the HTTP connection manager.
    pub network: Vec<Slot>,
    /// `(namespace.name, reason)` for plugins that do not apply.
    pub skipped: Vec<(String, String)>,
}

/// Rank of a phase in the chain: AUTHN, AUTHZ, STATS, then unspecified.
fn phase_rank(phase: Option<&str>) -> u8 {
    match phase {
        Some("AUTHN") => 0,
        Some("AUTHZ") => 1,
        Some("STATS") => 2,
        _ => 3,
    }
}

/// Why `plugin` does not apply to `workload`, or `None` if it does.
pub fn not_selected(plugin: &Plugin, workload: &Workload) -> Option<String> {
    if plugin.spec.target_ref.is_some() || !plugin.spec.target_refs.is_empty() {
        if workload.direction != Direction::Gateway {
            return Some("targetRefs select gateways and waypoints, never a sidecar".into());
        }
        let refs = plugin
            .spec
            .target_ref
            .iter()
            .chain(&plugin.spec.target_refs);
        let named = refs.into_iter().any(|r| {
            r["kind"].as_str() == Some("Gateway")
                && r["name"].as_str() == workload.gateway_name.as_deref()
        });
        if !named || plugin.namespace != workload.namespace {
            return Some("its targetRefs do not name this gateway (workload gatewayName)".into());
        }
        return None;
    }
    if plugin.namespace != workload.namespace && plugin.namespace != workload.root_namespace {
        return Some(format!(
            "namespace {} is neither the workload's ({}) nor the root namespace ({})",
            plugin.namespace, workload.namespace, workload.root_namespace
        ));
    }
    if let Some(selector) = &plugin.spec.selector {
        for (key, value) in &selector.match_labels {
            if workload.labels.get(key) != Some(value) {
                return Some(format!(
                    "selector {key}={value} does not match the workload's labels"
                ));
            }
        }
    }
    if !plugin.spec.traffic.is_empty() {
        let any = plugin.spec.traffic.iter().any(|t| {
            workload.direction.matches_mode(t.mode.as_deref())
                && (t.ports.is_empty() || t.ports.iter().any(|p| p.number == workload.port))
        });
        if !any {
            return Some(format!(
                "no match entry selects {} traffic on port {}",
                workload.direction.as_str(),
                workload.port
            ));
        }
    }
    None
}

/// Selects and orders `plugins` (given in load order) for `workload`: phase order around
/// `jwt_authn` and `rbac`, priority descending within a phase, unset priority last (as
/// `i32::MIN`, which is what istiod compares), ties in load order.
pub fn place(plugins: &[Plugin], workload: &Workload) -> Placement {
    let mut placement = Placement::default();
    let mut chosen: Vec<usize> = Vec::new();
    for (index, plugin) in plugins.iter().enumerate() {
        match not_selected(plugin, workload) {
            Some(reason) => placement.skipped.push((plugin.full_name(), reason)),
            None => chosen.push(index),
        }
    }
    // A stable sort keeps load order for equal keys.
    chosen.sort_by_key(|&i| {
        let spec = &plugins[i].spec;
        (
            phase_rank(spec.phase.as_deref()),
            std::cmp::Reverse(spec.priority.unwrap_or(i32::MIN)),
        )
    });
    for kind in [FilterKind::Http, FilterKind::Network] {
        let mut chain = Vec::new();
        let mut emitted_jwt = false;
        let mut emitted_rbac = false;
        for &i in chosen.iter().filter(|&&i| plugins[i].kind() == kind) {
            let rank = phase_rank(plugins[i].spec.phase.as_deref());
            if kind == FilterKind::Http {
                if rank >= 1 && !emitted_jwt {
                    emitted_jwt = true;
                    chain.extend(workload.jwt.as_ref().map(|_| Slot::JwtAuthn));
                }
                if rank >= 2 && !emitted_rbac {
                    emitted_rbac = true;
                    chain.extend(workload.authorization.as_ref().map(|_| Slot::Rbac));
                }
            }
            chain.push(Slot::Plugin(i));
        }
        if kind == FilterKind::Http {
            if !emitted_jwt {
                chain.extend(workload.jwt.as_ref().map(|_| Slot::JwtAuthn));
            }
            if !emitted_rbac {
                chain.extend(workload.authorization.as_ref().map(|_| Slot::Rbac));
            }
            placement.http = chain;
        } else {
            placement.network = chain;
        }
    }
    placement
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::plugin::Spec;

    fn plugin(name: &str, phase: Option<&str>, priority: Option<i32>) -> Plugin {
        Plugin {
            namespace: "istio-ingress".into(),
            name: name.into(),
            source: "x.yaml".into(),
            spec: Spec {
                phase: phase.map(str::to_string),
                priority,
                ..Spec::default()
            },
            resource_version: String::new(),
        }
    }

    fn names(plugins: &[Plugin], chain: &[Slot]) -> Vec<String> {
        chain
            .iter()
            .map(|s| match s {
                Slot::Plugin(i) => plugins[*i].name.clone(),
                Slot::JwtAuthn => "jwt_authn".into(),
                Slot::Rbac => "rbac".into(),
            })
            .collect()
    }

    #[test]
    fn phases_wrap_jwt_authn_and_rbac_and_unset_priority_sorts_after_zero() {
        // Load order is by name; the chain order must come from phase and priority alone.
        let plugins = vec![
            plugin("a-stats", Some("STATS"), None),
            plugin("acl-check", Some("AUTHZ"), Some(1000)),
            plugin("b-unset", Some("AUTHZ"), None),
            plugin("c-zero", Some("AUTHZ"), Some(0)),
            plugin("check-header", Some("AUTHZ"), Some(10)),
            plugin("last", None, Some(5)),
            plugin("openid-connect", Some("AUTHN"), None),
        ];
        let mut workload = Workload {
            namespace: "istio-ingress".into(),
            ..Workload::default()
        };
        workload.jwt = Some(serde_yaml_ng::from_str("issuer: x\njwks: '{}'").expect("jwt rule"));
        workload.authorization = Some(serde_yaml_ng::from_str("action: DENY").expect("authz rule"));
        let placement = place(&plugins, &workload);
        assert_eq!(
            names(&plugins, &placement.http),
            [
                "openid-connect",
                "jwt_authn",
                "acl-check",
                "check-header",
                "c-zero",
                "b-unset",
                "rbac",
                "a-stats",
                "last"
            ]
        );
    }

    #[test]
    fn selection_follows_namespace_root_namespace_selector_and_match() {
        let mut plugins = vec![
            plugin("here", None, None),
            plugin("root", None, None),
            plugin("other", None, None),
        ];
        plugins[1].namespace = "istio-system".into();
        plugins[2].namespace = "elsewhere".into();
        let mut labelled = plugin("labelled", None, None);
        labelled.spec.selector = serde_yaml_ng::from_str("matchLabels: {app: web}").ok();
        plugins.push(labelled);
        let mut server_only = plugin("server-only", None, None);
        server_only.spec.traffic =
            serde_yaml_ng::from_str("[{mode: SERVER, ports: [{number: 9090}]}]").expect("match");
        plugins.push(server_only);
        let workload = Workload {
            namespace: "istio-ingress".into(),
            ..Workload::default()
        };
        let placement = place(&plugins, &workload);
        assert_eq!(names(&plugins, &placement.http), ["here", "root"]);
        let skipped: Vec<&str> = placement.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            skipped,
            [
                "elsewhere.other",
                "istio-ingress.labelled",
                "istio-ingress.server-only"
            ]
        );
    }
}
