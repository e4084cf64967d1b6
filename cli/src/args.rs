//! Command-line arguments. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Package, push, pull and sign proxy-wasm plugins as OCI images, and write the Istio
/// WasmPlugin manifests that deploy them.
#[derive(Debug, Parser)]
#[command(name = "weir", version, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print results only: no status lines, no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Print more detail about each step (hides progress bars).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// The verbs. Adding one: a variant here and a file in `src/commands/`.
// Parsed once per process; boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an OCI image of a plugin and write it as an OCI image layout (directory or .tar).
    Package(PackageArgs),
    /// Package a plugin (or take a layout from `weir package`) and push it to a registry.
    Push(PushArgs),
    /// Pull a plugin image in any format Istio reads and write its plugin.wasm.
    Pull(PullArgs),
    /// Write an Istio WasmPlugin (or Tetrate WasmExtension), or validate existing ones.
    Manifest(ManifestArgs),
    /// Convert Maistra ServiceMeshExtension resources and images to WasmPlugin ones.
    Migrate(MigrateArgs),
    /// Sign a pushed image in the cosign signature layout, or create a signing key pair.
    Sign(SignArgs),
    /// Run WasmPlugins in a local Envoy, wired exactly as Istio wires them; edits reload live.
    Run(RunArgs),
    /// Run a plugin once on one request, with no proxy, and show what it did.
    Exec(ExecArgs),
    /// Write a new plugin crate (HTTP, or NETWORK with --network) that builds and tests as is.
    New(NewArgs),
}

/// `weir new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name: crate, WasmPlugin and image name (lowercase letters, digits, '-').
    pub name: String,
    /// A NETWORK (L4) filter, from the ip-allowlist example; without it, an HTTP filter from
    /// the hello example.
    #[arg(long)]
    pub network: bool,
    /// Where to write the crate, a new or empty directory [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Depend on the Weir checkout at this directory (by path) instead of the crates.io
    /// releases of weir-sdk and weir-runtime.
    #[arg(long, value_name = "CHECKOUT")]
    pub weir_path: Option<PathBuf>,
}

/// `weir run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// WasmPlugin YAML files or directories (*.yaml, *.yml); may also hold the
    /// kubernetes.io/dockerconfigjson Secrets that imagePullSecret names.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
    /// What istiod knows about the proxy: namespace, labels, rootNamespace, direction
    /// (inbound, outbound, gateway), port, jwt, authorization. Defaults: namespace
    /// default, inbound, port 8080.
    #[arg(long, value_name = "FILE")]
    pub workload: Option<PathBuf>,
    /// Where requests go after the filters, e.g. http://127.0.0.1:8000 (without it, Envoy
    /// answers 200 itself).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Listener address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Print the Envoy configuration (bootstrap, listener, extension configs) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Directory for Envoy's config files and log [default: a new temporary directory].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Module cache [default: $XDG_CACHE_HOME/weir/wasm or ~/.cache/weir/wasm].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Trust this PEM CA certificate for https:// modules and registries (repeatable).
    #[arg(long = "ca-cert", value_name = "PEM")]
    pub ca_certs: Vec<PathBuf>,
    /// A registry host:port that speaks plain HTTP (Istio's WASM_INSECURE_REGISTRIES; repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// The Envoy binary [default: $WEIR_ENVOY, the project's .venv/bin/envoy, or envoy on PATH].
    #[arg(long, value_name = "FILE")]
    pub envoy: Option<PathBuf>,
    /// Envoy's log level.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub envoy_log_level: String,
}

/// Image shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A regular image whose last layer is tar+gzip holding /plugin.wasm (works everywhere).
    Compat,
    /// An OCI artifact with two layers: wasm config and raw wasm.
    Artifact,
}

/// How to turn a module into an image.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Image shape.
    #[arg(long, value_enum, default_value_t = FormatArg::Compat)]
    pub format: FormatArg,
    /// Use Docker schema2 media types instead of OCI ones (compat format only).
    #[arg(long)]
    pub docker: bool,
    /// Root id the module serves, recorded in runtime-config.json (repeatable).
    #[arg(long = "root-id", value_name = "ID")]
    pub root_ids: Vec<String>,
}

/// `weir package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// A .wasm file, or a plugin crate directory (built with cargo for wasm32-wasip1).
    pub input: PathBuf,
    /// Where to write the OCI image layout: a directory, or a tarball if it ends in .tar.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Tag recorded in the layout's index.json.
    #[arg(long, default_value = "latest")]
    pub tag: String,
    /// Image options.
    #[command(flatten)]
    pub image: ImageArgs,
}

/// How to reach and authenticate to a registry.
#[derive(Debug, Args, Clone)]
pub struct RegistryArgs {
    /// The registry speaks plain HTTP (no TLS). Istio then needs WASM_INSECURE_REGISTRIES.
    #[arg(long)]
    pub insecure: bool,
    /// Trust this PEM CA certificate in addition to the system roots (repeatable).
    #[arg(long = "ca-cert", value_name = "PEM")]
    pub ca_certs: Vec<PathBuf>,
    /// User name; the password is read from stdin (see --password-stdin).
    #[arg(long, short = 'u', requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password from stdin (one line).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Docker config file with credentials [default: $DOCKER_CONFIG/config.json or ~/.docker/config.json].
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// A kubernetes.io/dockerconfigjson Secret (what a WasmPlugin's imagePullSecret names).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["username", "docker_config"])]
    pub pull_secret: Option<PathBuf>,
    /// Attempts per request on connection errors and 5xx responses.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub retries: u32,
}

/// `weir push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// A .wasm file, a plugin crate directory, or an OCI layout (directory or .tar) from `weir package`.
    pub input: PathBuf,
    /// Destination, e.g. oci://registry.example:5000/plugins/header-append:1.0
    pub reference: String,
    /// Image options (ignored for layout input).
    #[command(flatten)]
    pub image: ImageArgs,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `weir pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image to pull, e.g. oci://registry.example:5000/plugins/header-append:1.0
    pub reference: String,
    /// Where to write the module.
    #[arg(short, long, default_value = "plugin.wasm")]
    pub output: PathBuf,
    /// Expected manifest digest (hex or sha256:hex), as in a WasmPlugin's `sha256`.
    #[arg(long, value_name = "DIGEST")]
    pub sha256: Option<String>,
    /// Refuse the image unless it carries a cosign signature made with this PEM public key.
    #[arg(long, value_name = "PEM")]
    pub verify_key: Option<PathBuf>,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `weir manifest`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ManifestArgs {
    /// `validate`; without it, a manifest is generated.
    #[command(subcommand)]
    pub command: Option<ManifestCommand>,
    /// Generation options.
    #[command(flatten)]
    pub generate: GenerateArgs,
}

/// Subcommands of `weir manifest`.
#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Check WasmPlugin YAML against Istio's CRD schema and its CEL rules.
    Validate(ValidateArgs),
}

/// `weir manifest validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// YAML files; each may hold several documents.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Which resource to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestKind {
    /// extensions.istio.io/v1alpha1 WasmPlugin.
    Istio,
    /// extension.tsb.tetrate.io/v2 WasmExtension.
    Tetrate,
}

/// `weir manifest` (generate).
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Resource name.
    #[arg(long)]
    pub name: Option<String>,
    /// Namespace.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Image or module URL; a bare host/repo:tag gets oci://.
    #[arg(long)]
    pub url: Option<String>,
    /// Manifest digest (hex or sha256:hex). See also --resolve.
    #[arg(long, value_name = "DIGEST")]
    pub sha256: Option<String>,
    /// Ask the registry for the manifest digest of --url and put it in `sha256`.
    #[arg(long, conflicts_with = "sha256")]
    pub resolve: bool,
    /// Workload label KEY=VALUE (repeatable); conflicts with --target-ref.
    #[arg(long, value_name = "KEY=VALUE")]
    pub selector: Vec<String>,
    /// Target [GROUP/]KIND/NAME, e.g. gateway.networking.k8s.io/Gateway/ingress (repeatable).
    #[arg(long = "target-ref", value_name = "REF", conflicts_with = "selector")]
    pub target_refs: Vec<String>,
    /// Filter-chain phase: AUTHN, AUTHZ or STATS.
    #[arg(long)]
    pub phase: Option<String>,
    /// Order within the phase (higher first).
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// JSON or YAML file whose object becomes pluginConfig.
    #[arg(long, value_name = "FILE")]
    pub plugin_config: Option<PathBuf>,
    /// PEM public key to put in pluginConfig.verificationKey (Red Hat's signed-module check).
    #[arg(long, value_name = "PEM")]
    pub verification_key: Option<PathBuf>,
    /// Envoy root id (pluginName).
    #[arg(long)]
    pub plugin_name: Option<String>,
    /// FAIL_CLOSE, FAIL_OPEN or FAIL_RELOAD.
    #[arg(long)]
    pub fail_strategy: Option<String>,
    /// IfNotPresent or Always.
    #[arg(long)]
    pub image_pull_policy: Option<String>,
    /// Name of a kubernetes.io/dockerconfigjson Secret in the same namespace.
    #[arg(long)]
    pub image_pull_secret: Option<String>,
    /// VM environment variable NAME=VALUE (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Pass the proxy's environment variable NAME to the VM (repeatable).
    #[arg(long, value_name = "NAME")]
    pub host_env: Vec<String>,
    /// Traffic direction: CLIENT, SERVER or CLIENT_AND_SERVER.
    #[arg(long)]
    pub match_mode: Option<String>,
    /// Destination port to match (repeatable).
    #[arg(long)]
    pub match_port: Vec<u32>,
    /// HTTP or NETWORK.
    #[arg(long = "type")]
    pub plugin_type: Option<String>,
    /// Resource kind to write.
    #[arg(long, value_enum, default_value_t = ManifestKind::Istio)]
    pub kind: ManifestKind,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Registry options for --resolve.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `weir migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// ServiceMeshExtension YAML file(s) to convert (not with --image).
    #[arg(required_unless_present = "image")]
    pub files: Vec<PathBuf>,
    /// Write the WasmPlugin YAML here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Convert an old extension image SRC (manifest.yaml + module) into a compat image DST.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], conflicts_with = "files")]
    pub image: Option<Vec<String>>,
    /// Registry options for --image.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `weir sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Image to sign (its manifest digest is signed).
    #[arg(required_unless_present = "generate_key")]
    pub reference: Option<String>,
    /// PEM PKCS#8 (or SEC1) P-256 private key.
    #[arg(long, value_name = "PEM", required_unless_present = "generate_key")]
    pub key: Option<PathBuf>,
    /// Create PREFIX.key and PREFIX.pub (P-256) instead of signing.
    #[arg(long, value_name = "PREFIX", conflicts_with_all = ["reference", "key"])]
    pub generate_key: Option<PathBuf>,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `weir exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The plugin: a .wasm file, or a plugin crate directory (built for wasm32-wasip1).
    pub plugin: PathBuf,
    /// Plugin configuration file (Istio's pluginConfig as JSON), read by on_configure.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// VM environment variable KEY=VALUE (Istio's vmConfig.env; repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Root id (Istio: pluginName).
    #[arg(long, value_name = "ID", default_value = "")]
    pub root_id: String,
    /// The request line the client sends: 'METHOD /path'.
    #[arg(long, value_name = "LINE", default_value = "GET /")]
    pub request: String,
    /// A request header 'name: value' (repeatable; 'host' sets :authority).
    #[arg(short = 'H', long = "header", value_name = "FIELD")]
    pub headers: Vec<String>,
    /// The request body: text, or @FILE.
    #[arg(long, value_name = "BODY")]
    pub body: Option<String>,
    /// The upstream's response, in the canned-response format (status line, headers, empty
    /// line, body): text, or @FILE [default: 200 with no body].
    #[arg(long, value_name = "RESPONSE")]
    pub response: Option<String>,
    /// Answer the plugin's callouts to CLUSTER with a canned-response FILE (repeatable).
    /// Format: an HTTP/1 message ('HTTP/1.1 200 OK', headers, empty line, body), or the
    /// single word 'fail' (no response) or 'timeout' (Envoy's 504).
    #[arg(long = "upstream", value_name = "CLUSTER=FILE")]
    pub upstreams: Vec<String>,
    /// Answer the plugin's gRPC calls and streams to CLUSTER with a gRPC reply FILE
    /// (repeatable). Format: a status line 'grpc CODE MESSAGE' (MESSAGE optional; or the single word
    /// 'timeout'), then 'initial NAME: VALUE', 'trailing NAME: VALUE' and 'delay MS' lines,
    /// an empty line, and the response message bytes (serialized protobuf).
    #[arg(long = "grpc-upstream", value_name = "CLUSTER=FILE")]
    pub grpc_upstreams: Vec<String>,
    /// A property PATH=VALUE for proxy_get_property, e.g. source.address=10.0.0.7;
    /// prefix int: or bool: for typed values (source.port=int:443) (repeatable).
    #[arg(long = "property", value_name = "PATH=VALUE")]
    pub properties: Vec<String>,
    /// Wasm instructions one callback may execute before it is stopped.
    #[arg(long, value_name = "N")]
    pub fuel_limit: Option<u64>,
    /// The time the plugin sees, as RFC 3339 (2026-12-03T10:00:00Z) or Unix seconds
    /// [default: now, from the system clock].
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Print a JSON report instead of text (a stable shape; see cli/README.md).
    #[arg(long)]
    pub json: bool,
}
