//! `weir new`: a plugin crate written from one of the repository's examples.
//!
//! The templates are `examples/hello` (HTTP) and `examples/ip-allowlist` (NETWORK), embedded
//! at build time (`build.rs`), so there is no second copy to drift. Writing one out renames
//! the crate, points its Weir dependencies at crates.io or a checkout, swaps the lines that
//! only make sense inside the repository for their stand-alone form, and adds
//! `.cargo/config.toml`. Each rewrite must find its text: an example that drifts from what
//! the generator expects is an error here (and in `cargo test -p weir-cli`), not a crate
//! with stale instructions.

use std::path::{Path, PathBuf};

use crate::UserError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// Which example a new plugin starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// `examples/hello`: an HTTP filter that sets a configured response header.
    Http,
    /// `examples/ip-allowlist`: a NETWORK (L4) filter that closes connections from outside
    /// configured address ranges.
    Network,
}

impl Template {
    /// The example's crate name.
    pub fn example(self) -> &'static str {
        match self {
            Template::Http => "hello",
            Template::Network => "ip-allowlist",
        }
    }

    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Template::Http => embedded::HELLO,
            Template::Network => embedded::IP_ALLOWLIST,
        }
    }
}

/// Where the new crate gets `weir-sdk` and `weir-runtime` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeirSource {
    /// crates.io, at the version the template names.
    Registry,
    /// A local Weir checkout (its root directory, absolute).
    Checkout(PathBuf),
}

impl WeirSource {
    /// A checkout at `dir`, checked to be one (it has the SDK and the runtime).
    pub fn checkout(dir: &Path) -> Result<Self, UserError> {
        let root = dir
            .canonicalize()
            .map_err(|e| UserError(format!("--weir-path {}: {e}", dir.display())))?;
        let sdk = std::fs::read_to_string(root.join("sdk/Cargo.toml")).unwrap_or_default();
        if !sdk.contains("name = \"weir-sdk\"") || !root.join("runtime/Cargo.toml").is_file() {
            return Err(UserError(format!(
                "--weir-path {} is not a Weir checkout (no sdk/Cargo.toml of weir-sdk and runtime/): \
                 pass the repository's root directory",
                dir.display()
            )));
        }
        Ok(WeirSource::Checkout(root))
    }
}

/// `.cargo/config.toml` of a new crate.
const CARGO_CONFIG: &str = r#"# `cargo wasm` builds the plugin: target/wasm32-wasip1/release/<crate>.wasm.
#
# build.target is deliberately left at the host: `cargo test` runs the tests on the host,
# where weir-runtime (wasmtime) loads the .wasm it builds itself (Plugin::build runs
# `cargo build --release --target wasm32-wasip1` for this crate). With
# build.target = "wasm32-wasip1", `cargo test` would try to compile wasmtime for Wasm.
[alias]
wasm = "build --release --target wasm32-wasip1"
"#;

/// Checks that `name` can name the crate and the WasmPlugin it becomes: a Kubernetes
/// resource name (RFC 1123 label) that is also a crate name cargo accepts.
pub fn check_name(name: &str) -> Result<(), UserError> {
    let refuse = |why: &str| {
        Err(UserError(format!(
            "invalid plugin name {name:?}: {why}. It names the crate and the WasmPlugin resource, so use \
             lowercase letters, digits and '-', starting with a letter, e.g. `weir new my-plugin`"
        )))
    };
    if name.is_empty() || name.len() > 63 {
        return refuse("it must be 1 to 63 characters long");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return refuse("it must start with a lowercase letter");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return refuse(&format!("{c:?} is not allowed"));
    }
    if name.ends_with('-') {
        return refuse("it must not end with '-'");
    }
    // Names cargo refuses (keywords, the standard library's crates) and the crates a plugin
    // depends on, whose library names it would shadow.
    #[rustfmt::skip]
    const TAKEN: &[&str] = &[
        "weir", "weir-sdk", "weir-runtime", "weir-abi", "serde", "serde-json", "log", "proxy-wasm", "test",
        "std", "core", "alloc", "proc-macro", "self", "super", "crate", "fn", "mod", "struct", "enum", "impl",
        "trait", "type", "use", "let", "loop", "match", "move", "mut", "pub", "ref", "return", "static",
        "true", "false", "unsafe", "where", "while", "async", "await", "dyn", "abstract", "become", "box",
        "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "as",
        "break", "const", "continue", "else", "extern", "for", "if", "in",
    ];
    if TAKEN.contains(&name) {
        return refuse("it is a Rust keyword, a standard crate or a crate the plugin depends on");
    }
    Ok(())
}

/// The files of a new crate named `name` (paths relative to its directory).
pub fn render(
    template: Template,
    name: &str,
    weir: &WeirSource,
) -> Result<Vec<(PathBuf, String)>, UserError> {
    check_name(name)?;
    let from = template.example();
    let (from_snake, snake) = (from.replace('-', "_"), name.replace('-', "_"));
    let mut out = Vec::new();
    for (rel, text) in template.files() {
        let rel = rel.strip_suffix(".in").unwrap_or(rel);
        let drifted = |what: &str| {
            UserError(format!(
                "internal: examples/{from}/{rel} no longer has {what}"
            ))
        };
        let mut text = text.to_string();
        if rel == "envoy.yaml" {
            // build-plugins.sh names the optimised module after the folder.
            let module = format!("target/plugins/{from}.wasm");
            let built = format!("target/wasm32-wasip1/release/{snake}.wasm");
            text = rewrite(&text, &module, &built).ok_or_else(|| drifted(&module))?;
        }
        text = text
            .replace(
                &format!("tests/{from_snake}.rs"),
                &format!("tests/{snake}.rs"),
            )
            .replace(&format!("{from_snake}.wasm"), &format!("{snake}.wasm"));
        if from_snake != from {
            text = replace_word(&text, &from_snake, &snake);
        }
        text = replace_word(&text, from, name);
        match rel {
            "Cargo.toml" => {
                text =
                    point_weir_dependencies(&text, weir).ok_or_else(|| drifted("../../ paths"))?
            }
            "envoy.yaml" => {
                text = rewrite(&text, "From the repository root:", "From this folder:")
                    .ok_or_else(|| drifted("its comment"))?;
                let run = format!("make build && .venv/bin/envoy -c examples/{name}/envoy.yaml");
                text = rewrite(&text, &run, "cargo wasm && envoy -c envoy.yaml")
                    .ok_or_else(|| drifted(&run))?;
            }
            "README.md" => {
                text = standalone_readme(&text, name)
                    .ok_or_else(|| drifted("its build and run lines"))?
            }
            _ => {}
        }
        let rel = rel.replace(
            &format!("tests/{from_snake}.rs"),
            &format!("tests/{snake}.rs"),
        );
        out.push((PathBuf::from(rel), text));
    }
    out.push((
        PathBuf::from(".cargo/config.toml"),
        CARGO_CONFIG.to_string(),
    ));
    out.push((PathBuf::from(".gitignore"), "/target\n".to_string()));
    Ok(out)
}

/// Writes `files` under `dir`, which must not exist or be empty.
pub fn write(dir: &Path, files: &[(PathBuf, String)]) -> Result<(), UserError> {
    let io = |what: &Path, e: std::io::Error| UserError(format!("{}: {e}", what.display()));
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(UserError(format!(
                "{} is not empty: pass a new or empty directory with --path (nothing was written)",
                dir.display()
            )));
        }
    } else if dir.exists() {
        return Err(UserError(format!(
            "{} exists and is not a directory: choose another --path",
            dir.display()
        )));
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

/// Replaces `from` where it stands as a word: not inside a longer name (`hello` in `x-hello`
/// is replaced, `hello` in `othello` or `Hello` is not).
fn replace_word(text: &str, from: &str, to: &str) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before = rest[..at]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back());
        let after = rest[at + from.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(is_name) || after.is_some_and(is_name) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

/// `text` with `from` replaced, or `None` when it has none.
fn rewrite(text: &str, from: &str, to: &str) -> Option<String> {
    text.contains(from).then(|| text.replace(from, to))
}

/// The example's `path = "../../<crate>"` entries as crates.io versions or checkout paths.
fn point_weir_dependencies(manifest: &str, weir: &WeirSource) -> Option<String> {
    const PATH: &str = ", path = \"../../";
    let mut found = 0;
    let mut out = String::with_capacity(manifest.len());
    for line in manifest.lines() {
        match (line.find(PATH), weir) {
            (None, _) => out.push_str(line),
            (Some(at), WeirSource::Registry) => {
                let close = at + PATH.len() + line[at + PATH.len()..].find('"')?;
                out.push_str(&line[..at]);
                out.push_str(&line[close + 1..]);
                found += 1;
            }
            (Some(_), WeirSource::Checkout(root)) => {
                out.push_str(&line.replace("\"../../", &format!("\"{}/", root.display())));
                found += 1;
            }
        }
        out.push('\n');
    }
    (found == 2).then_some(out)
}

/// The README's lines that only work inside the repository, in the stand-alone crate's form:
/// the build command (the alias `cargo wasm`) and `make build && make run name=<example>`
/// (run from the repository root; here Envoy reads the crate's own build).
fn standalone_readme(readme: &str, name: &str) -> Option<String> {
    const BUILD: &str = "cargo build --target wasm32-wasip1 --release";
    let run = format!("make build && make run name={name}");
    let (mut built, mut ran) = (false, false);
    let mut out = String::with_capacity(readme.len());
    for line in readme.lines() {
        let (command, rest) = if let Some(rest) = line.strip_prefix(BUILD) {
            built = true;
            ("cargo wasm", rest)
        } else if let Some(rest) = line.strip_prefix(&run) {
            ran = true;
            ("envoy -c envoy.yaml --concurrency 1", rest) // after `cargo wasm`
        } else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let comment = rest.trim_start().trim_start_matches('#').trim_start();
        let comment = comment
            .strip_prefix("from the repository root: ")
            .unwrap_or(comment);
        out.push_str(&format!("{command:<47}# {comment}\n"));
    }
    (built && ran).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_replaced_only_where_they_stand_alone() {
        assert_eq!(
            replace_word("hello x-hello Hello othello hello_x", "hello", "hi"),
            "hi x-hi Hello othello hello_x"
        );
    }

    #[test]
    fn names_that_cannot_name_a_crate_and_a_resource_are_refused() {
        for bad in [
            "",
            "My-plugin",
            "my_plugin",
            "1st",
            "my-",
            "fn",
            "test",
            "weir",
            "a.b",
            &"x".repeat(64),
        ] {
            let err = check_name(bad).expect_err("refused").0;
            assert!(err.contains("weir new my-plugin"), "{bad:?}: {err}");
        }
        check_name("my-plugin2").expect("accepted");
    }

    /// A file added to an example needs its link in `templates/`: otherwise `weir new`
    /// would write a crate without it.
    #[test]
    fn every_file_of_each_example_is_a_template_file() {
        fn walk(dir: &Path, rel: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("example folder") {
                let entry = entry.expect("example entry");
                let rel = rel.join(entry.file_name());
                if entry.path().is_dir() {
                    if entry.file_name() != "target" {
                        walk(&entry.path(), &rel, out);
                    }
                } else {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        for template in [Template::Http, Template::Network] {
            let example = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples")
                .join(template.example());
            let mut in_example = Vec::new();
            walk(&example, Path::new(""), &mut in_example);
            in_example.sort();
            let mut embedded: Vec<String> = template
                .files()
                .iter()
                .map(|(rel, _)| rel.strip_suffix(".in").unwrap_or(rel).to_string())
                .collect();
            embedded.sort();
            assert_eq!(
                in_example,
                embedded,
                "examples/{} vs cli/templates/{}",
                template.example(),
                template.example()
            );
        }
    }

    #[test]
    fn every_template_renders_for_both_sources() {
        for template in [Template::Http, Template::Network] {
            for weir in [
                WeirSource::Registry,
                WeirSource::Checkout(PathBuf::from("/src/weir")),
            ] {
                let files = render(template, "my-plugin", &weir).expect("renders");
                let manifest = &files
                    .iter()
                    .find(|(p, _)| p == Path::new("Cargo.toml"))
                    .expect("a Cargo.toml")
                    .1;
                assert!(manifest.contains("name = \"my-plugin\""), "{manifest}");
                match &weir {
                    WeirSource::Registry => {
                        assert!(
                            manifest.contains("weir-sdk = { version = \"0.1.0\" }"),
                            "{manifest}"
                        );
                        assert!(!manifest.contains("path ="), "{manifest}");
                    }
                    WeirSource::Checkout(_) => {
                        assert!(manifest.contains("path = \"/src/weir/sdk\""), "{manifest}")
                    }
                }
                for (path, text) in &files {
                    for repo_only in [
                        "../../",
                        "examples/",
                        "target/plugins",
                        "make build",
                        template.example(),
                    ] {
                        assert!(
                            !text.contains(repo_only),
                            "{}: {repo_only:?} left in\n{text}",
                            path.display()
                        );
                    }
                }
            }
        }
    }
}
