//! `policy-server`: the command line. `policy-server --help` lists the flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use policy_server::{Algorithm, Config, PolicyServer};
use tracing_subscriber::EnvFilter;

/// Reference policy server for Weir's acl-check plugin: verifies the user's JWT, decides
/// grants from an ACL file (or a Rego policy), and answers with a short-lived signed token.
/// Log level: RUST_LOG (default `info`).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Configuration file (YAML, or JSON when it ends in .json).
    #[arg(
        short,
        long,
        value_name = "FILE",
        required_unless_present = "generate_key"
    )]
    config: Option<PathBuf>,

    /// Listen on this address instead of the config's `listen` (port 0 picks a free port).
    /// Once listening, the server prints its base URL (`http://ADDR`) as one line on stdout.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Load and check the configuration, keys, ACL and policies, then exit.
    #[arg(long, requires = "config")]
    check_config: bool,

    /// Write a new private signing key (PKCS#8 PEM, mode 0600) to FILE, print its kid, and
    /// exit. Never overwrites an existing file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "listen", "check_config"])]
    generate_key: Option<PathBuf>,

    /// Algorithm of the key --generate-key writes: EdDSA (the cheapest for check-header to
    /// verify) or ES256.
    #[arg(
        long,
        value_name = "ALG",
        default_value = "EdDSA",
        requires = "generate_key"
    )]
    key_algorithm: Algorithm,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    if let Some(path) = &args.generate_key {
        let kid = policy_server::write_new_key(path, args.key_algorithm)?;
        println!("{kid}");
        eprintln!(
            "wrote {} key to {} (kid {kid})",
            args.key_algorithm,
            path.display()
        );
        return Ok(());
    }
    let config_path = args.config.context("--config is required")?;
    let mut config = Config::load(&config_path)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = PolicyServer::from_config(&config).await?;
        if args.check_config {
            println!("configuration OK");
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(server.listen_address())
            .await
            .with_context(|| format!("binding {}", server.listen_address()))?;
        // One line on stdout with the real address (useful with port 0): test harnesses
        // read it instead of parsing logs.
        let address = listener.local_addr().context("reading the bound address")?;
        println!("http://{address}");
        server
            .serve(listener, policy_server::shutdown_signal())
            .await?;
        tracing::info!("stopped");
        Ok(())
    })
}
