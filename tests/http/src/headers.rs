//! An ordered, multi-valued header list, as it appeared on the wire.

use std::fmt;

/// Header fields in the order they were received, one entry per field line.
///
/// A name sent twice appears twice: nothing is merged or re-ordered, so tests can tell
/// "two values" from "one comma-joined value". Name lookups ignore ASCII case.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Builds a list from `(name, value)` pairs, keeping their order.
    pub fn new(fields: Vec<(String, String)>) -> Self {
        Self(fields)
    }

    /// Every value of `name`, in wire order (empty when absent).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).into_iter().next()
    }

    /// Whether at least one field is called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// All fields, in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of field lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// One `name: value` per line reads better in assertion failures than a tuple dump.
impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, v)| format!("{n}: {v}")))
            .finish()
    }
}
