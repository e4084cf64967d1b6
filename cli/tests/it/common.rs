//! Shared fixtures: a test module, the `weir` binary, and a real Debian `docker-registry`
//! with htpasswd (bcrypt) auth and TLS from a CA generated per registry.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

pub const USER: &str = "weir";
pub const PASSWORD: &str = "s3cret-pass";

/// A small valid proxy-wasm module (ABI 0.2.1 marker, allocator, context callback);
/// `tag` goes into a data segment so different tags give different modules.
pub fn test_module(tag: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_context_create") (param i32 i32))
  (data (i32.const 16) "{tag}"))"#
    );
    wat::parse_str(&wat).expect("test module assembles")
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// Runs `weir` with `args`, feeding `stdin`.
pub fn weir(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent-weir-test-docker-config")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("weir finishes")
}

/// stdout as text, trimmed.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "weir failed: {}\nstderr:\n{}",
        out.status,
        stderr(out)
    );
    stdout(out)
}

/// Asserts failure with the user-error status and returns stderr.
#[track_caller]
pub fn user_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1; stderr:\n{}",
        stderr(out)
    );
    stderr(out)
}

/// Compares with `tests/it/snapshots/NAME`; `WEIR_BLESS=1` rewrites the file.
#[track_caller]
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/snapshots")
        .join(name);
    if std::env::var_os("WEIR_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing snapshot {}", path.display()));
    assert_eq!(
        actual, expected,
        "snapshot {name} differs (rerun with WEIR_BLESS=1 to accept)"
    );
}

/// Replaces what changes between runs (ports, digests, temp paths) with placeholders.
pub fn redact(text: &str, registry_host: &str, temp: &Path) -> String {
    let digest = regex::Regex::new("sha256:[0-9a-f]{64}").expect("regex");
    let text = text
        .replace(registry_host, "[REGISTRY]")
        .replace(&temp.display().to_string(), "[TMP]");
    let text = digest.replace_all(&text, "[DIGEST]");
    // Layer sizes follow the compressor's output, which is not what these snapshots pin.
    let sizes = regex::Regex::new(r"received \d+ of \d+ bytes").expect("regex");
    sizes
        .replace_all(&text, "received [N] of [SIZE] bytes")
        .into_owned()
}

/// Files in `dir` (names), to show nothing partial was left behind.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// A running `docker-registry` on 127.0.0.1, stopped when dropped.
pub struct TestRegistry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub host: String,
}

impl TestRegistry {
    /// Starts a plain-HTTP registry without authentication (what `--insecure` is for).
    pub fn start_plain() -> TestRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}/data\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().display()
        );
        write(dir.path(), "config.yml", config.as_bytes());
        let child = spawn_registry(dir.path());
        let registry = TestRegistry {
            child,
            dir,
            host: format!("127.0.0.1:{port}"),
        };
        registry.wait_ready();
        registry
    }

    /// Stops the registry process; its storage and port stay reserved for [`Self::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the registry again with the same configuration, storage and port.
    pub fn restart(&mut self) {
        self.child = spawn_registry(self.dir.path());
        self.wait_ready();
    }

    /// Starts a registry with TLS (fresh CA) and htpasswd auth for USER/PASSWORD.
    pub fn start() -> TestRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca_pem, cert_pem, key_pem) = certificates();
        std::fs::create_dir_all(dir.path().join("certs")).expect("certs dir");
        write(&dir.path().join("certs"), "ca.crt", ca_pem.as_bytes());
        write(dir.path(), "server.crt", cert_pem.as_bytes());
        write(dir.path(), "server.key", key_pem.as_bytes());
        let hash = bcrypt::hash_with_result(PASSWORD, 5)
            .expect("bcrypt")
            .format_for_version(bcrypt::Version::TwoA);
        write(
            dir.path(),
            "htpasswd",
            format!("{USER}:{hash}\n").as_bytes(),
        );
        let port = free_port();
        let d = dir.path().display();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\nauth:\n  htpasswd:\n    realm: basic-realm\n    path: {d}/htpasswd\n"
        );
        write(dir.path(), "config.yml", config.as_bytes());
        let child = spawn_registry(dir.path());
        let registry = TestRegistry {
            child,
            dir,
            host: format!("127.0.0.1:{port}"),
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(&self.host).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        panic!(
            "docker-registry did not listen on {} within 15 s; log:\n{log}",
            self.host
        );
    }

    /// The CA certificate file the tests trust.
    pub fn ca(&self) -> String {
        self.dir.path().join("certs/ca.crt").display().to_string()
    }

    /// Directory skopeo reads CA certificates from.
    pub fn cert_dir(&self) -> String {
        self.dir.path().join("certs").display().to_string()
    }

    /// `host:port/repo:tag`.
    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host)
    }

    /// Path of a blob's data file in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// Runs skopeo (see [`skopeo`]).
    pub fn skopeo(&self, args: &[&str]) -> Output {
        skopeo(args)
    }

    /// `skopeo inspect --raw` of `image`.
    pub fn skopeo_raw_manifest(&self, image: &str) -> Vec<u8> {
        let creds = format!("{USER}:{PASSWORD}");
        let target = format!("docker://{image}");
        self.skopeo(&[
            "inspect",
            "--raw",
            "--cert-dir",
            &self.cert_dir(),
            "--creds",
            &creds,
            &target,
        ])
        .stdout
    }

    /// `skopeo copy docker://image dir:DEST`.
    pub fn skopeo_copy_to_dir(&self, image: &str, dest: &Path) {
        let creds = format!("{USER}:{PASSWORD}");
        let src = format!("docker://{image}");
        let dst = format!("dir:{}", dest.display());
        self.skopeo(&[
            "copy",
            "--src-cert-dir",
            &self.cert_dir(),
            "--src-creds",
            &creds,
            &src,
            &dst,
        ]);
    }

    /// Registry flags with the test CA and the password on stdin.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--ca-cert".into(),
            self.ca(),
            "--username".into(),
            USER.into(),
            "--password-stdin".into(),
        ]
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs skopeo with its own accept-anything signature policy, so the tests do not depend on
/// the machine's /etc/containers/policy.json; fails the test if skopeo fails.
pub fn skopeo(args: &[&str]) -> Output {
    let policy_dir = tempfile::tempdir().expect("tempdir");
    let policy = write(
        policy_dir.path(),
        "policy.json",
        br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    );
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .output()
        .expect("skopeo runs (Debian package skopeo)");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `docker-registry serve DIR/config.yml`, logging to DIR/registry.log.
fn spawn_registry(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("registry.log"))
        .expect("log file");
    Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(log.try_clone().expect("log clone"))
        .stderr(log)
        .spawn()
        .expect("docker-registry starts (Debian package docker-registry)")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// (CA PEM, server certificate PEM for 127.0.0.1 and localhost, server key PEM).
pub fn certificates() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "weir test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca cert");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &ca).expect("server cert");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
