//! `weir new`: the crates it writes build for wasm32-wasip1 and pass their own tests at once,
//! and the README's "Write your first plugin" steps work as written.
//!
//! The generated crates build in this test run's own target directory (cargo does not hold
//! its lock while tests run), so crates they share with the workspace's build are not compiled
//! again; each build is also bounded by `timeout`. wasmtime is compiled again (the generated
//! crates resolve other features for its dependencies), so they build it with Cranelift
//! unoptimised (`.cargo/unoptimised-cranelift.toml`), as the examples' tests in `make test`
//! do, and the two share that one build: each test here compiles one small guest, and an
//! optimised Cranelift would more than double the build.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{ok, user_error, weir};

const MARKER: &str = "<!-- first-plugin:";
/// Upper bound for one generated crate's `cargo test` and `cargo wasm` (a cold build of
/// wasmtime on 2 cores takes about 5 minutes; a warm one seconds).
const BUILD_TIMEOUT_SECS: &str = "1200";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is in the repository")
        .to_path_buf()
}

/// The target directory of this test binary (`…/target/debug/deps/it-…` → `…/target`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_exe()
                .expect("test binary path")
                .ancestors()
                .nth(3)
                .expect("…/target/debug/deps")
                .to_path_buf()
        })
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-new-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

const UNOPTIMISED: &str = ".cargo/unoptimised-cranelift.toml";

/// A scratch directory for a generated crate, holding the cargo config that builds it (a
/// subdirectory) with Cranelift unoptimised.
fn build_scratch(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join(".cargo")).expect("create .cargo");
    std::fs::copy(
        repo_root().join(UNOPTIMISED),
        dir.join(".cargo/config.toml"),
    )
    .expect("copy the unoptimised-Cranelift config");
    dir
}

/// The packages a `[profile.dev.package]` table gives an opt-level (`name = { opt-level = N }`
/// lines), with that level.
fn opt_levels(toml: &str) -> Vec<(String, String)> {
    let mut levels: Vec<(String, String)> = toml
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(" = { opt-level = ")?;
            let level = rest.strip_suffix(" }")?;
            Some((name.trim().to_string(), level.to_string()))
        })
        .collect();
    levels.sort();
    levels
}

/// The override must name every package the workspace (.cargo/config.toml) and the
/// templates (the examples' Cargo.toml) optimise, or the builds it is for would mix levels.
#[test]
fn the_unoptimised_config_undoes_every_raised_opt_level() {
    let read = |path: &str| {
        std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let undone: Vec<String> = opt_levels(&read(UNOPTIMISED))
        .into_iter()
        .map(|(name, level)| {
            assert_eq!(level, "0", "{UNOPTIMISED}: {name}");
            name
        })
        .collect();
    assert!(undone.len() > 10, "{UNOPTIMISED} lists {undone:?}");
    // Every example that sets opt-levels this way: each is a template users copy.
    let mut paths = vec![".cargo/config.toml".to_string()];
    for entry in std::fs::read_dir(repo_root().join("examples")).expect("examples/") {
        let manifest = format!(
            "examples/{}/Cargo.toml",
            entry
                .expect("examples/ entry")
                .file_name()
                .to_string_lossy()
        );
        if repo_root().join(&manifest).is_file() && !opt_levels(&read(&manifest)).is_empty() {
            paths.push(manifest);
        }
    }
    assert!(
        paths.len() > 3,
        "the templates set no opt-levels: {paths:?}"
    );
    for path in &paths {
        let raised: Vec<String> = opt_levels(&read(path))
            .into_iter()
            .filter(|(_, level)| level != "0")
            .map(|(name, _)| name)
            .collect();
        assert_eq!(raised, undone, "{path} and {UNOPTIMISED} differ");
    }
}

/// Runs `script` with bash (-euxo pipefail) in the repository root, the `weir` under test
/// first on PATH and the shared target directory, and asserts it succeeds.
fn run_script(script: &str) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_weir"))
        .parent()
        .expect("weir's directory")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let status = Command::new("timeout")
        .args([
            BUILD_TIMEOUT_SECS,
            "bash",
            "-euxo",
            "pipefail",
            "-c",
            script,
        ])
        .current_dir(repo_root())
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", target_dir())
        // Settings of the outer test build must not reach the generated crate's build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("bash runs");
    assert!(
        status.success(),
        "{status}: the script failed (see the output above):\n{script}"
    );
}

fn assert_built(snake: &str) {
    let wasm = target_dir().join(format!("wasm32-wasip1/release/{snake}.wasm"));
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    assert_eq!(&bytes[..4], b"\0asm");
}

/// The shell block that follows the marker comment in README.md.
fn first_plugin_script(readme: &str) -> String {
    let after = &readme[readme
        .find(MARKER)
        .expect("README.md has the first-plugin marker")..];
    let start = after
        .find("```sh\n")
        .expect("a ```sh block follows the marker")
        + "```sh\n".len();
    let len = after[start..].find("```").expect("the block is closed");
    after[start..start + len].to_string()
}

#[test]
fn the_script_is_found() {
    let script = first_plugin_script("intro\n<!-- first-plugin: x -->\n```sh\necho hi\n```\nrest");
    assert_eq!(script, "echo hi\n");
}

/// The README's steps, as written: only `cargo install` is left out (the `weir` this test
/// run built is first on PATH instead) and /tmp/my-plugin becomes a fresh directory.
#[test]
fn readme_first_plugin_steps_work_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let script = first_plugin_script(&readme);
    assert!(
        script.contains("weir new my-plugin --path /tmp/my-plugin"),
        "unexpected script:\n{script}"
    );
    let scratch = build_scratch("readme");
    let dest = scratch.join("my-plugin");
    let script: String = script
        .lines()
        .filter(|line| !line.starts_with("cargo install"))
        .map(|line| line.replace("/tmp/my-plugin", dest.to_str().expect("utf-8 temp dir")) + "\n")
        .collect();
    run_script(&script);

    let manifest = std::fs::read_to_string(dest.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("name = \"my-plugin\""), "{manifest}");
    assert!(
        !manifest.contains("../../"),
        "paths still point into the repository:\n{manifest}"
    );
    assert!(dest.join("tests/my_plugin.rs").is_file());
    assert_built("my_plugin");
    std::fs::remove_dir_all(&scratch).expect("remove scratch dir");
}

#[test]
fn a_network_plugin_builds_and_passes_its_tests() {
    let scratch = build_scratch("network");
    let dest = scratch.join("tcp-guard");
    let out = weir(
        &[
            "new",
            "tcp-guard",
            "--network",
            "--path",
            dest.to_str().expect("utf-8 path"),
            "--weir-path",
            repo_root().to_str().expect("utf-8 path"),
        ],
        None,
    );
    ok(&out);
    let lib = std::fs::read_to_string(dest.join("src/lib.rs")).expect("src/lib.rs");
    assert!(lib.contains("NetworkFilter"), "{lib}");
    let yaml = std::fs::read_to_string(dest.join("wasmplugin.yaml")).expect("wasmplugin.yaml");
    assert!(
        yaml.contains("name: tcp-guard") && yaml.contains("type: NETWORK"),
        "{yaml}"
    );
    run_script(&format!("cd {}\ncargo test\ncargo wasm\n", dest.display()));
    assert_built("tcp_guard");
    std::fs::remove_dir_all(&scratch).expect("remove scratch dir");
}

#[test]
fn it_refuses_a_bad_name_and_a_non_empty_directory() {
    let scratch = scratch("refusals");
    let err = user_error(&weir(
        &[
            "new",
            "My_Plugin",
            "--path",
            scratch.join("x").to_str().expect("utf-8 path"),
        ],
        None,
    ));
    assert!(
        err.contains("invalid plugin name \"My_Plugin\"") && err.contains("weir new my-plugin"),
        "{err}"
    );
    assert!(!scratch.join("x").exists());

    std::fs::write(scratch.join("keep.txt"), "mine").expect("scratch file");
    let err = user_error(&weir(
        &[
            "new",
            "my-plugin",
            "--path",
            scratch.to_str().expect("utf-8 path"),
        ],
        None,
    ));
    assert!(
        err.contains("is not empty") && err.contains("--path"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&scratch).expect("scratch dir").count(),
        1,
        "nothing was written"
    );

    let err = user_error(&weir(
        &[
            "new",
            "my-plugin",
            "--path",
            scratch.join("y").to_str().expect("utf-8 path"),
            "--weir-path",
            "/",
        ],
        None,
    ));
    assert!(err.contains("is not a Weir checkout"), "{err}");
    std::fs::remove_dir_all(&scratch).expect("scratch file");
}
