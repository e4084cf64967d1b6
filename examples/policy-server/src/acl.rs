//! The ACL file: subjects and groups mapped to the functions and files they may use.
//!
//! ```yaml
//! subjects:
//!   alice: { functions: [read_data, write_data], files: ["/data/alice/*"] }
//! groups:
//!   readers: { functions: [read_data], files: ["/data/public/*"] }
//! ```
//!
//! A user gets the union of their subject's entry and the entries of all their groups.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::parse_yaml_or_json;

/// What a user may use: the `functions` and `files` claims of the issued token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Permitted function names (check-header matches its `function` against these).
    #[serde(default)]
    pub functions: BTreeSet<String>,
    /// Permitted files (names or patterns; their meaning is up to the upstream).
    #[serde(default)]
    pub files: BTreeSet<String>,
}

impl Grants {
    /// True when nothing is granted (the server then answers 403).
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty() && self.files.is_empty()
    }

    /// Adds everything `other` grants.
    pub fn extend(&mut self, other: &Grants) {
        self.functions.extend(other.functions.iter().cloned());
        self.files.extend(other.files.iter().cloned());
    }
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    /// Grants per `sub` claim.
    #[serde(default)]
    pub subjects: BTreeMap<String, Grants>,
    /// Grants per group (from the configured groups claim).
    #[serde(default)]
    pub groups: BTreeMap<String, Grants>,
}

impl Acl {
    /// Reads and checks an ACL file (`.json` as JSON, anything else as YAML).
    pub fn load(path: &Path) -> Result<Acl> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading ACL file {}", path.display()))?;
        let acl: Acl = parse_yaml_or_json(path, &text).with_context(|| {
            format!(
                "parsing ACL file {} (expected `subjects:` and/or `groups:`)",
                path.display()
            )
        })?;
        acl.check()
            .with_context(|| format!("checking ACL file {}", path.display()))?;
        Ok(acl)
    }

    fn check(&self) -> Result<()> {
        let entries = self
            .subjects
            .iter()
            .map(|e| ("subject", e))
            .chain(self.groups.iter().map(|e| ("group", e)));
        for (kind, (name, grants)) in entries {
            ensure!(!name.is_empty(), "a {kind} has an empty name");
            let names = grants.functions.iter().chain(&grants.files);
            ensure!(
                names.clone().all(|n| !n.is_empty()),
                "{kind} {name:?} grants an empty function or file name"
            );
        }
        Ok(())
    }

    /// The union of the grants for `subject` and each of `groups`.
    pub fn grants_for(&self, subject: &str, groups: &[String]) -> Grants {
        let mut grants = Grants::default();
        if let Some(g) = self.subjects.get(subject) {
            grants.extend(g);
        }
        for group in groups {
            if let Some(g) = self.groups.get(group) {
                grants.extend(g);
            }
        }
        grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_and_groups_are_unioned() {
        let acl: Acl = serde_yaml_ng::from_str(
            "subjects:\n  alice: {functions: [write_data], files: [a]}\n\
             groups:\n  readers: {functions: [read_data]}\n  ops: {files: [b, a]}\n",
        )
        .unwrap();
        let g = acl.grants_for("alice", &["readers".into(), "ops".into(), "nobody".into()]);
        assert_eq!(
            g.functions.iter().collect::<Vec<_>>(),
            ["read_data", "write_data"]
        );
        assert_eq!(g.files.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(acl.grants_for("mallory", &[]).is_empty());
    }

    #[test]
    fn json_files_are_read_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.json");
        std::fs::write(&path, r#"{"groups": {"ops": {"functions": ["restart"]}}}"#).unwrap();
        let acl = Acl::load(&path).unwrap();
        let grants = acl.grants_for("x", &["ops".into()]);
        assert_eq!(grants.functions.iter().collect::<Vec<_>>(), ["restart"]);
        // A JSON file is not read leniently as YAML: a trailing comma is an error.
        std::fs::write(&path, r#"{"groups": {},}"#).unwrap();
        assert!(Acl::load(&path).is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(serde_yaml_ng::from_str::<Acl>("users: {}\n").is_err());
        assert!(serde_yaml_ng::from_str::<Acl>("subjects: {a: {function: [x]}}\n").is_err());
    }
}
