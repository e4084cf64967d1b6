//! `weir exec`: runs a plugin once in weir-runtime, with no proxy, and prints what happened:
//! the request as the upstream saw it, the response as the client saw it, callouts, logs,
//! metrics and the instructions each callback executed.
//!
//! The flags' value formats (request line, `@file` bodies, canned responses) are in
//! [`spec`]; the output (text, and the stable `--json` shape) in [`report`].

mod grpc_report;
mod grpc_spec;
mod report;
mod spec;

use std::time::Instant;

use anyhow::{Context, Result};
use weir_cli::input::load_module;
use weir_cli::UserError;
use weir_runtime::{Plugin, PluginBuilder, StartError};

use crate::args::ExecArgs;
use crate::printer::Printer;
use report::{Report, Scope};
use spec::PropertyArg;

pub(crate) fn exec(args: ExecArgs, printer: Printer) -> Result<()> {
    let module = load_module(&args.plugin)?;
    // Compiled on its own first, so that -v tells the cold cost (cranelift, once per
    // process) from starting an already compiled module (what each further VM and each
    // `weir run` reload of an unchanged module pays). A module that fails here fails the
    // same way in start() below, which reports it with its diagnostics.
    let clock = Instant::now();
    let compiled = weir_runtime::linked_imports(&module.wasm).is_ok();
    let compile_time = clock.elapsed();
    let mut builder = Plugin::from_bytes(module.wasm).root_id(&args.root_id);
    if let Some(path) = &args.config {
        let config = std::fs::read(path)
            .with_context(|| format!("reading the plugin configuration {}", path.display()))?;
        builder = builder.config(config);
    }
    builder = configure(builder, &args)?;

    let mut request = spec::request_line(&args.request)?;
    for field in &args.headers {
        let (name, value) = spec::header("-H", field)?;
        request = spec::add_request_header(request, &name, &value);
    }
    if let Some(body) = &args.body {
        request = request.body(spec::bytes_arg("--body", body)?);
    }
    let response = match &args.response {
        Some(value) => {
            let bytes = spec::bytes_arg("--response", value)?;
            spec::canned(&bytes).map_err(|message| UserError(format!("--response: {message}")))?
        }
        None => weir_runtime::Response::status(200),
    };

    printer.detail(format!(
        "running {} (root id '{}')",
        module.path.display(),
        args.root_id
    ));
    let clock = Instant::now();
    let plugin = builder.start().map_err(|error| start_error(error, &args))?;
    let start_time = clock.elapsed();
    if compiled {
        printer.detail(format!(
            "compiled in {:.1} ms; started (instantiate, on_vm_start, on_configure) in {:.3} ms",
            compile_time.as_secs_f64() * 1e3,
            start_time.as_secs_f64() * 1e3
        ));
    }
    let mut logs: Vec<(Scope, _)> = plugin
        .logs()
        .into_iter()
        .map(|entry| (Scope::Plugin, entry))
        .collect();
    let outcome = plugin.http().request(request).response(response).run();
    let after = plugin.logs();
    logs.extend(
        after
            .into_iter()
            .skip(logs.len())
            .map(|entry| (Scope::Plugin, entry)),
    );
    logs.extend(
        outcome
            .logs()
            .iter()
            .cloned()
            .map(|entry| (Scope::Stream, entry)),
    );

    let trap = outcome.trap().cloned();
    let report = Report {
        path: module.path.display().to_string(),
        root_id: args.root_id.clone(),
        abi_version: plugin.abi_version(),
        outcome,
        logs,
    };
    if args.json {
        let text =
            serde_json::to_string_pretty(&report.to_json()).context("serializing the report")?;
        printer.result(text);
    } else {
        printer.result(report.to_text().trim_end());
    }
    match trap {
        Some(trap) => Err(UserError(format!("the plugin crashed: {trap}")).into()),
        None => Ok(()),
    }
}

/// Applies `--env`, `--property`, `--upstream`, `--grpc-upstream` and `--fuel-limit`.
fn configure(mut builder: PluginBuilder, args: &ExecArgs) -> Result<PluginBuilder> {
    for pair in &args.env {
        let (key, value) = spec::key_value("--env", pair)?;
        builder = builder.env(key, value);
    }
    for pair in &args.properties {
        let (path, value) = spec::key_value("--property", pair)?;
        builder = match spec::property_value(value)? {
            PropertyArg::Text(text) => builder.property(path, text),
            PropertyArg::Int(int) => builder.property(path, int),
            PropertyArg::Bool(flag) => builder.property(path, flag),
        };
    }
    for pair in &args.upstreams {
        let (cluster, file) = spec::key_value("--upstream", pair)?;
        let file = file.strip_prefix('@').unwrap_or(file);
        let response = spec::canned_file("--upstream", std::path::Path::new(file))?;
        builder = builder.upstream(cluster, move |_request| response.clone());
    }
    for pair in &args.grpc_upstreams {
        let (cluster, file) = spec::key_value("--grpc-upstream", pair)?;
        let file = file.strip_prefix('@').unwrap_or(file);
        let answer = grpc_spec::reply_file("--grpc-upstream", std::path::Path::new(file))?;
        builder = builder.grpc_upstream(cluster, move |_request| answer.clone());
    }
    if let Some(limit) = args.fuel_limit {
        builder = builder.fuel_limit(limit);
    }
    let now = match &args.time {
        Some(text) => spec::time_arg("--time", text)?,
        None => std::time::SystemTime::now(),
    };
    Ok(builder.clock_start(now))
}

/// A plugin that refuses to start: the runtime's error (with the plugin's own log lines)
/// stays the cause, so `diagnostics` can give the hint that fits it.
fn start_error(error: StartError, args: &ExecArgs) -> anyhow::Error {
    let what = match (&error, &args.config) {
        (StartError::ConfigRejected { .. }, Some(path)) => {
            format!("the plugin rejected the configuration {}", path.display())
        }
        _ => format!("starting {}", args.plugin.display()),
    };
    anyhow::Error::new(error).context(what)
}
