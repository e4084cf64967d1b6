//! `weir manifest`: generate a WasmPlugin / WasmExtension, or `validate` existing YAML.

use anyhow::{Context, Result};
use serde_yaml_ng::Value;
use weir_cli::fsutil::write_atomic;
use weir_cli::manifest::validate::{parse_documents, validate_wasmplugin, ValidationFailed};
use weir_cli::manifest::wasmplugin::{self, EnvVar, PluginSpec, TargetRef};
use weir_cli::oci::registry::parse_reference;
use weir_cli::UserError;

use crate::args::{GenerateArgs, ManifestArgs, ManifestCommand, ManifestKind, ValidateArgs};
use crate::printer::Printer;
use crate::settings::registry_for;

pub(crate) async fn manifest(args: ManifestArgs, printer: Printer) -> Result<()> {
    match args.command {
        Some(ManifestCommand::Validate(v)) => validate(v, printer),
        None => generate(args.generate, printer).await,
    }
}

fn validate(args: ValidateArgs, printer: Printer) -> Result<()> {
    let mut failures = Vec::new();
    let mut count = 0;
    for file in &args.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let docs = parse_documents(&text)
            .map_err(|e| UserError(format!("{}: not YAML: {e}", file.display())))?;
        for doc in docs {
            count += 1;
            match validate_wasmplugin(&doc) {
                Ok(()) => {
                    printer.status(format!("{}: {} is valid", file.display(), resource(&doc)))
                }
                Err(e) => {
                    printer.result(format!("{}: {e}", file.display()));
                    failures.push(e);
                }
            }
        }
    }
    if failures.is_empty() {
        printer.status(format!("{count} WasmPlugin document(s) valid"));
        return Ok(());
    }
    Err(ValidationFailed {
        resource: format!("{} of {count} document(s)", failures.len()),
        errors: failures.iter().map(|f| f.resource.clone()).collect(),
    }
    .into())
}

fn resource(doc: &Value) -> String {
    format!(
        "WasmPlugin/{}",
        doc["metadata"]["name"].as_str().unwrap_or("<unnamed>")
    )
}

fn key_value(text: &str, what: &str) -> Result<(String, String)> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| UserError(format!("{what} `{text}` is not KEY=VALUE")).into())
}

async fn generate(args: GenerateArgs, printer: Printer) -> Result<()> {
    let name = args
        .name
        .clone()
        .ok_or_else(|| UserError("--name is required to generate a manifest".into()))?;
    let url = args
        .url
        .clone()
        .ok_or_else(|| UserError("--url is required to generate a manifest".into()))?;
    let sha256 = if args.resolve {
        let reference = parse_reference(&url)?;
        let registry = registry_for(&args.registry, &reference)?;
        let (_, digest) = registry
            .fetch_manifest(&reference, weir_cli::oci::ACCEPTED_MANIFESTS)
            .await
            .with_context(|| format!("resolving the digest of {}", reference.whole()))?;
        Some(digest)
    } else {
        args.sha256.clone()
    };
    let mut plugin_config = match &args.plugin_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            // YAML is a superset of JSON, so one parser reads both.
            Some(
                serde_yaml_ng::from_str::<Value>(&text)
                    .map_err(|e| UserError(format!("{}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    if let Some(path) = &args.verification_key {
        // Parsing proves it is a P-256 public key before anyone deploys it.
        weir_cli::oci::signature::read_public_key(path)?;
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config = plugin_config.get_or_insert_with(|| Value::Mapping(Default::default()));
        let map = config.as_mapping_mut().ok_or_else(|| {
            UserError("pluginConfig must be an object to hold verificationKey".into())
        })?;
        map.insert(Value::String("verificationKey".into()), Value::String(pem));
    }
    let mut env = Vec::new();
    for e in &args.env {
        let (name, value) = key_value(e, "--env")?;
        env.push(EnvVar::Inline { name, value });
    }
    env.extend(
        args.host_env
            .iter()
            .map(|name| EnvVar::Host { name: name.clone() }),
    );
    let spec = PluginSpec {
        name,
        namespace: args.namespace.clone(),
        url,
        sha256,
        selector: args
            .selector
            .iter()
            .map(|s| key_value(s, "--selector"))
            .collect::<Result<_>>()?,
        target_refs: args
            .target_refs
            .iter()
            .map(|t| t.parse::<TargetRef>())
            .collect::<Result<_, _>>()?,
        phase: args.phase.clone(),
        priority: args.priority,
        plugin_config,
        plugin_name: args.plugin_name.clone(),
        fail_strategy: args.fail_strategy.clone(),
        image_pull_policy: args.image_pull_policy.clone(),
        image_pull_secret: args.image_pull_secret.clone(),
        env,
        match_mode: args.match_mode.clone(),
        match_ports: args.match_port.clone(),
        plugin_type: args.plugin_type.clone(),
    };
    let doc = match args.kind {
        ManifestKind::Istio => wasmplugin::wasm_plugin(&spec)?,
        ManifestKind::Tetrate => {
            let (doc, dropped) = wasmplugin::tetrate_extension(&spec)?;
            for d in dropped {
                printer.warn(format!("WasmExtension cannot express {d}; left out"));
            }
            doc
        }
    };
    let yaml = wasmplugin::to_yaml(&[doc])?;
    match &args.output {
        Some(path) => {
            write_atomic(path, yaml.as_bytes())?;
            printer.status(format!("Wrote {}", path.display()));
        }
        None => print!("{yaml}"),
    }
    Ok(())
}
