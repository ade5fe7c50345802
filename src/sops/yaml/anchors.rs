//! Anchors (`&name`) and their aliases (`*name`), with an expansion budget.
//!
//! An alias is expanded by copying the anchored value (as sops does when it turns go-yaml
//! nodes into its tree). Every copy is charged its [`weight`](crate::sops::limits::weight)
//! against [`MAX_ALIAS_EXPANSION`], so nested aliases ("billion laughs") are refused after a
//! bounded amount of work and memory instead of growing exponentially.

use std::collections::HashMap;

use crate::sops::limits::{MAX_ALIAS_EXPANSION, weight};
use crate::sops::tree::Value;

/// Anchors seen so far in one document and the expansion work spent on aliases.
#[derive(Default)]
pub(super) struct Anchors {
    map: HashMap<String, (Value, usize)>,
    spent: usize,
}

impl Anchors {
    /// Records `&name` for `v` (a later anchor of the same name replaces it, as in YAML).
    pub(super) fn define(&mut self, name: String, v: &Value) {
        let w = weight(v);
        self.map.insert(name, (v.clone(), w));
    }

    /// Expands `*name`, charging its weight to the budget.
    pub(super) fn resolve(&mut self, name: &str) -> Result<Value, String> {
        let (v, w) = self
            .map
            .get(name)
            .ok_or_else(|| format!("unknown alias *{name}"))?;
        self.spent = self.spent.saturating_add(*w);
        if self.spent > MAX_ALIAS_EXPANSION {
            return Err(format!(
                "aliases expand to more than {MAX_ALIAS_EXPANSION} nodes and bytes (an alias bomb?)"
            ));
        }
        Ok(v.clone())
    }
}
