#!/usr/bin/env python3
"""Checks that every folder in plugins/ and examples/ is a complete template a user can copy.

The README promises each folder is complete: a user copies one and has a crate that builds,
tests, documents its configuration and runs in Envoy. This checks, per folder:
  - Cargo.toml, src/ and tests/ with at least one test file, README.md;
  - README.md has a "Configuration" section holding a table whose first column names the
    settings (`code`), and a "Security notes" section;
  - a plugin (a `cdylib` crate) also has wasmplugin.yaml (Istio) and envoy.yaml (local run);
    envoy.yaml loads the plugin from target/plugins/<folder>.wasm, the file `make build`
    writes and `make run name=<folder>` runs; and, with --envoy, Envoy itself accepts that
    envoy.yaml in validate mode, which also loads and configures the plugin (so a config the
    plugin refuses fails here, as it would for the user).
A folder that is not a plugin (the reference policy server, a host program) needs neither
YAML file; it still needs the crate, tests and README.
Usage: check-templates.py [--envoy PATH] [--self-test]   (exit 1 on any problem)
--self-test also shows each check refuses a folder with one thing missing or broken.
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def sections(readme):
    """The `## ` sections of a Markdown text, as {heading: body}."""
    found, current = {}, None
    for line in readme.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return {k: "\n".join(v) for k, v in found.items()}


def is_plugin(folder):
    return re.search(r'crate-type\s*=\s*\[[^\]]*"cdylib"', (folder / "Cargo.toml").read_text()) is not None


def problems(folder, envoy=None, root=ROOT):
    """What a folder lacks to be a complete template, as messages."""
    found = []
    for name in ("Cargo.toml", "README.md"):
        if not (folder / name).is_file():
            found.append(f"{name} missing")
    for name in ("src", "tests"):
        if not (folder / name).is_dir():
            found.append(f"{name}/ missing")
    if (folder / "tests").is_dir() and not any((folder / "tests").rglob("*.rs")):
        found.append("tests/ holds no test file (*.rs)")
    if found:
        return found
    readme = sections((folder / "README.md").read_text())
    config = next((body for heading, body in readme.items() if heading.startswith("Configuration")), None)
    if config is None:
        found.append('README.md has no "## Configuration" section')
    elif not re.search(r"^\|\s*`[^`]+`", config, re.MULTILINE):
        found.append("README.md's Configuration section has no table of settings (first column `name`)")
    if not any(heading.startswith("Security notes") for heading in readme):
        found.append('README.md has no "## Security notes" section')
    if not is_plugin(folder):
        return found
    for name in ("wasmplugin.yaml", "envoy.yaml"):
        if not (folder / name).is_file():
            found.append(f"{name} missing (a plugin folder runs in Istio and in a local Envoy)")
    if found:
        return found
    wasm = f"target/plugins/{folder.name}.wasm"
    envoy_yaml = (folder / "envoy.yaml").read_text()
    if f"filename: {wasm}" not in envoy_yaml:
        found.append(f"envoy.yaml does not load {wasm} (what make build writes and make run uses)")
    elif envoy:
        if not (root / wasm).is_file():
            found.append(f"{wasm} missing: run make build first")
        else:
            run = subprocess.run([envoy, "--mode", "validate", "-c", str(folder / "envoy.yaml")],
                                 cwd=root, capture_output=True, text=True, timeout=60)
            if run.returncode != 0:
                why = [l for l in run.stderr.splitlines() if "error" in l or "critical" in l]
                found.append("Envoy refuses envoy.yaml: " + (why[0] if why else run.stderr.strip()[-300:]))
    return found


def folders(root=ROOT):
    return sorted(p for base in ("plugins", "examples") for p in (root / base).iterdir() if p.is_dir())


def check(envoy=None):
    bad = 0
    for folder in folders():
        found = problems(folder, envoy)
        kind = "plugin" if (folder / "Cargo.toml").is_file() and is_plugin(folder) else "host crate"
        if found:
            bad += 1
            for message in found:
                print(f"FAIL {folder.relative_to(ROOT)}: {message}")
        else:
            print(f"ok   {folder.relative_to(ROOT)} ({kind}{', Envoy accepts envoy.yaml' if envoy and kind == 'plugin' else ''})")
    return bad


def self_test(envoy=None):
    """Each check refuses a copy of examples/hello with one thing broken."""
    source = ROOT / "examples" / "hello"
    breakages = {
        "README.md missing": lambda d: (d / "README.md").unlink(),
        "tests/ missing": lambda d: shutil.rmtree(d / "tests"),
        "no test file": lambda d: [p.unlink() for p in (d / "tests").rglob("*.rs")],
        "no Configuration section": lambda d: rewrite(d / "README.md", r"## Configuration", "## Settings"),
        "no settings table": lambda d: rewrite(d / "README.md", r"(?m)^\| `", "| "),
        "no Security notes": lambda d: rewrite(d / "README.md", r"## Security notes", "## Notes"),
        "wasmplugin.yaml missing": lambda d: (d / "wasmplugin.yaml").unlink(),
        "envoy.yaml missing": lambda d: (d / "envoy.yaml").unlink(),
        "envoy.yaml loads another file": lambda d: rewrite(d / "envoy.yaml", r"hello\.wasm", "other.wasm"),
    }
    if envoy:
        breakages["Envoy refuses the config"] = lambda d: rewrite(
            d / "envoy.yaml", r"value: '\{.*\}'", "value: '{\"greeting\": 7}'")
    failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        for what, breaker in breakages.items():
            copy = pathlib.Path(scratch) / what.replace(" ", "-") / "hello"
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("target"))
            if problems(copy, envoy):
                print(f"FAIL self-test: a pristine copy is refused ({what})")
                failed += 1
                continue
            breaker(copy)
            if problems(copy, envoy):
                print(f"ok   self-test: refused when {what}")
            else:
                print(f"FAIL self-test: accepted although {what}")
                failed += 1
    return failed


def rewrite(path, pattern, replacement):
    text = path.read_text()
    changed = re.sub(pattern, replacement, text)
    assert changed != text, f"self-test breakage did not apply to {path.name}: {pattern}"
    path.write_text(changed)


def main(args):
    envoy = None
    if "--envoy" in args:
        envoy = args[args.index("--envoy") + 1]
    failed = check(envoy)
    if "--self-test" in args:
        failed += self_test(envoy)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
