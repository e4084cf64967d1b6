//! The README's "Write your first plugin" steps, run exactly as written: copy
//! `examples/hello` out of the repository, point it at this checkout, build the `.wasm`,
//! and run its tests. If the README and the template drift apart, this fails.

use std::path::PathBuf;
use std::process::Command;
use weir_envoy_tests::repo_root;

const MARKER: &str = "<!-- first-plugin:";

/// The shell block that follows the marker comment in README.md.
fn first_plugin_script(readme: &str) -> String {
    let after = &readme[readme.find(MARKER).expect("README.md has the first-plugin marker")..];
    let start = after.find("```sh\n").expect("a ```sh block follows the marker") + "```sh\n".len();
    let len = after[start..].find("```").expect("the block is closed");
    after[start..start + len].to_string()
}

#[test]
fn readme_first_plugin_steps_work_as_written() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let script = first_plugin_script(&readme);
    assert!(script.contains("cp -r examples/hello /tmp/my-plugin"), "unexpected script:\n{script}");

    // The README copies to /tmp/my-plugin; a test must not collide with a person's copy or
    // another run, so only that path is swapped for a fresh directory.
    let scratch = tempdir();
    let dest = scratch.join("my-plugin");
    let script = script.replace("/tmp/my-plugin", dest.to_str().unwrap());

    // Share the build cache the outer run uses (the repository's target/ unless
    // CARGO_TARGET_DIR says otherwise), so the copy does not rebuild wasmtime; cargo does not
    // hold this directory's lock while tests run.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let status = Command::new("bash")
        .args(["-euxo", "pipefail", "-c", &script])
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("bash runs");
    assert!(status.success(), "the README's first-plugin steps failed (see the output above)");

    let manifest = std::fs::read_to_string(dest.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"my-plugin\""), "{manifest}");
    assert!(!manifest.contains("../../"), "paths still point into the repository:\n{manifest}");
    let wasm = target.join("wasm32-wasip1/release/my_plugin.wasm");
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    assert_eq!(&bytes[..4], b"\0asm");
    std::fs::remove_dir_all(&scratch).unwrap();
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-readme-first-plugin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_script_is_found() {
    let script = first_plugin_script("intro\n<!-- first-plugin: x -->\n```sh\necho hi\n```\nrest");
    assert_eq!(script, "echo hi\n");
}
