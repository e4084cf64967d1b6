//! Grants from a Rego policy, evaluated in-process with regorus (no OPA daemon).
//!
//! The policy sees `input = {subject, groups, claims, method, uri, host}` and the
//! configured rule (default `data.weir.grants`) must evaluate to
//! `{"functions": [...], "files": [...]}` (either may be left out; sets are fine).
//! An undefined rule means "no grants".

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::Value;

use crate::acl::Grants;
use crate::config::{parse_yaml_or_json, RegoConfig};

/// A compiled set of policies plus the rule to evaluate.
pub struct RegoPolicy {
    // regorus engines are cheap to clone and not meant to be shared between threads;
    // each evaluation works on its own clone of this one.
    template: Mutex<regorus::Engine>,
    rule: String,
}

impl RegoPolicy {
    /// Loads the policy files and the optional data file.
    pub fn from_config(config: &RegoConfig) -> Result<RegoPolicy> {
        anyhow::ensure!(
            !config.policies.is_empty(),
            "rego.policies: name at least one .rego file"
        );
        anyhow::ensure!(config.timeout_ms > 0, "rego.timeout_ms must be positive");
        let mut engine = regorus::Engine::new();
        // A cooperative wall-clock limit: a runaway policy fails that request (500) instead
        // of holding a blocking thread indefinitely.
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: Duration::from_millis(config.timeout_ms),
            check_interval: NonZeroU32::new(64).expect("64 is not zero"),
        });
        for path in &config.policies {
            engine
                .add_policy_from_file(path)
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("loading Rego policy {}", path.display()))?;
        }
        if let Some(path) = &config.data_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading rego.data_file {}", path.display()))?;
            let data: Value = parse_yaml_or_json(path, &text)
                .with_context(|| format!("parsing rego.data_file {}", path.display()))?;
            let data =
                regorus::Value::from_json_str(&data.to_string()).map_err(|e| anyhow!("{e}"))?;
            engine
                .add_data(data)
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("adding rego.data_file {} as data", path.display()))?;
        }
        // One evaluation now compiles the policies (clones made later start compiled) and
        // turns a misspelt rule into a start-up error instead of a 500 on every request.
        engine.set_input(regorus::Value::new_object());
        engine
            .eval_rule(config.rule.clone())
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| {
                format!(
                    "rego.rule {:?} cannot be evaluated: is it declared in a loaded policy?",
                    config.rule
                )
            })?;
        Ok(RegoPolicy {
            template: Mutex::new(engine),
            rule: config.rule.clone(),
        })
    }

    /// Evaluates the rule for one request.
    pub fn evaluate(&self, input: &Value) -> Result<Grants> {
        let mut engine = self
            .template
            .lock()
            .map_err(|_| anyhow!("Rego engine lock poisoned"))?
            .clone();
        let input =
            regorus::Value::from_json_str(&input.to_string()).map_err(|e| anyhow!("{e}"))?;
        engine.set_input(input);
        let result = engine
            .eval_rule(self.rule.clone())
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("evaluating {}", self.rule))?;
        if result == regorus::Value::Undefined {
            return Ok(Grants::default());
        }
        let json = result.to_json_str().map_err(|e| anyhow!("{e}"))?;
        serde_json::from_str(&json).with_context(|| {
            format!(
                "{} must be an object with `functions` and/or `files` string arrays, got {json}",
                self.rule
            )
        })
    }
}
