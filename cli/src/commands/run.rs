//! `weir run`: WasmPlugins in a local Envoy, wired as Istio wires them, reloaded on edits.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use weir_cli::run::bootstrap::parse_upstream;
use weir_cli::run::cache::ModuleCache;
use weir_cli::run::fetch::FetchOptions;
use weir_cli::run::process::{find_envoy, EnvoyProcess};
use weir_cli::run::{RunOptions, Session};

use crate::args::RunArgs;
use crate::printer::Printer;

/// How often inputs and `file://` modules are checked for changes.
const POLL: Duration = Duration::from_millis(100);

pub(crate) async fn run(args: RunArgs, printer: Printer) -> Result<()> {
    let upstream = args.upstream.as_deref().map(parse_upstream).transpose()?;
    let mut fetch = FetchOptions::new(ModuleCache::new(
        args.cache_dir
            .clone()
            .unwrap_or_else(ModuleCache::default_root),
    ));
    fetch.ca_certs = args.ca_certs.clone();
    fetch.insecure_registries = args.insecure_registries.clone();
    let (state_dir, _temporary) = match &args.state_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("weir-run-")
                .tempdir()
                .context("creating a state directory")?;
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let options = RunOptions {
        inputs: args.files.clone(),
        workload: args.workload.clone(),
        upstream,
        listen: concrete_port(args.listen)?,
        fetch,
    };
    let mut session = Session::new(options, state_dir);
    // Validation happens here, before Envoy is looked for or started.
    session.refresh().await?;
    report_problems(&session, &printer);
    if args.dry_run {
        print_config(&session)?;
        return Ok(());
    }
    let envoy_bin = find_envoy(args.envoy.as_deref())?;
    let files = session.files.clone();
    let level = args.envoy_log_level.clone();
    let mut envoy = tokio::task::spawn_blocking(move || {
        EnvoyProcess::start(&envoy_bin, &files, &level, Duration::from_secs(30))
    })
    .await
    .context("waiting for Envoy to start")??;
    printer.result(format!("listening  http://{}", session.options.listen));
    printer.result(format!("admin      http://{}", envoy.admin()));
    printer.result(format!("envoy log  {}", session.files.log().display()));
    printer.result(format!("config     {}", session.files.dir.display()));
    print_chain(&session, &printer);
    printer.status(format!(
        "Envoy running (pid {}); watching the inputs. Ctrl-C stops.",
        envoy.pid()
    ));

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut stamp = session.watch_stamp();
    let mut ticker = tokio::time::interval(POLL);
    let outcome = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            _ = terminate.recv() => break Ok(()),
            _ = ticker.tick() => {}
        }
        if let Some(status) = envoy.exited() {
            break Err(anyhow::anyhow!(
                "Envoy exited ({status}):\n{}",
                envoy.log_tail(30)
            ));
        }
        let now = session.watch_stamp();
        if now == stamp {
            continue;
        }
        stamp = now;
        let started = Instant::now();
        match session.refresh().await {
            Ok(changed) => {
                report_problems(&session, &printer);
                printer.status(format!(
                    "reloaded in {} ms{}",
                    started.elapsed().as_millis(),
                    if changed.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", changed.join(", "))
                    }
                ));
                print_chain(&session, &printer);
            }
            Err(e) => printer.warn(format!(
                "not reloaded, Envoy keeps the previous configuration: {e:#}"
            )),
        }
    };
    let status = tokio::task::spawn_blocking(move || envoy.stop())
        .await
        .context("stopping Envoy")?;
    printer.status(format!(
        "Envoy stopped ({})",
        status.map_or("unknown status".into(), |s| s.to_string())
    ));
    outcome
}

/// Port 0 becomes a free port now: listener updates must keep the address.
fn concrete_port(listen: SocketAddr) -> Result<SocketAddr> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    let probe = TcpListener::bind(listen)
        .with_context(|| format!("finding a free port on {}", listen.ip()))?;
    Ok(probe.local_addr()?)
}

fn report_problems(session: &Session, printer: &Printer) {
    let Some(current) = session.current() else {
        return;
    };
    for skipped in &current.inputs.skipped {
        printer.detail(format!("ignored (not a WasmPlugin or Secret): {skipped}"));
    }
    for (name, reason) in &current.placement.skipped {
        printer.status(format!("not applied: {name}: {reason}"));
    }
    for (name, state) in &current.states {
        if let Some(reason) = &state.failure {
            printer.warn(format!("{name}: module fetch failed: {reason}"));
        }
        if let Some(reason) = &state.rejection {
            printer.warn(format!("{name}: {reason}; Envoy refuses the filter too and answers requests 500 until the WasmPlugin's pluginConfig or vmConfig.env is fixed"));
        }
    }
}

fn print_chain(session: &Session, printer: &Printer) {
    printer.result("filter chain:");
    for (i, line) in session.chain_lines().iter().enumerate() {
        printer.result(format!("  {:>2}. {line}", i + 1));
    }
}

fn print_config(session: &Session) -> Result<()> {
    let files = &session.files;
    let mut paths = vec![files.bootstrap(), files.lds()];
    if let Some(current) = session.current() {
        paths.extend(current.states.keys().map(|name| files.ecds(name)));
    }
    let mut out = String::new();
    for (i, path) in paths.iter().enumerate() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)?;
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&format!("# {}\n", path.display()));
        out.push_str(&serde_yaml_ng::to_string(&value)?);
    }
    print!("{out}");
    Ok(())
}
