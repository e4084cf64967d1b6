# Weir: one entry point for people and CI. Every target installs what it needs first
# (scripts/setup.sh is idempotent), so a fresh machine needs only `make demo` / `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
EXAMPLES := $(patsubst %/Cargo.toml,%,$(wildcard examples/*/Cargo.toml))

# The suites after test-unit run the binaries `cargo test --workspace` built (this command
# is a no-op then). `cargo build -p X` or `cargo run -p X` would resolve features for X
# alone and compile wasmtime and cranelift once more (~2 min each on 2 cores).
WORKSPACE_BUILD := $(CARGO) test -q --workspace --no-run
DEBUG_DIR := $${CARGO_TARGET_DIR:-$(CURDIR)/target}/debug
# For builds that compile wasmtime again but run few guests or none (the examples' tests,
# cargo package's verification): Cranelift unoptimised, less than half the build time.
UNOPTIMISED_CRANELIFT := --config $(CURDIR)/.cargo/unoptimised-cranelift.toml

.PHONY: help setup envoy build test test-unit test-wasi test-examples test-demo test-soak demo soak run bench fuzz clean-wasm

help: ## Show the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## Install the wasm32-wasip1 target, Debian tools and Envoy (idempotent)
	@scripts/setup.sh

envoy: setup ## Install Envoy 1.40 (V8) into .venv

build: setup ## Build every plugin and example to target/plugins/<name>.wasm and check sizes
	@scripts/build-plugins.sh

test: build test-unit test-wasi test-examples test-static test-templates lint test-demo test-soak ## Run every test: unit, runtime, CLI, registry, Envoy, examples
	@echo "make test: all suites passed"

test-unit: setup
	$(CARGO) test --workspace --no-fail-fast

# The SDK's unit tests again, inside wasm32-wasip1, run by weir-runtime (.cargo/config.toml)
# with target/debug/weir-wasi-run.
test-wasi: setup ## The SDK's unit tests inside wasm32-wasip1, run by weir-runtime
	$(WORKSPACE_BUILD)
	$(CARGO) test -p weir-sdk --target wasm32-wasip1

test-examples: setup
	@for dir in $(EXAMPLES); do \
	  echo "==> $$dir"; \
	  CARGO_TARGET_DIR="$${CARGO_TARGET_DIR:-$(CURDIR)/target}" $(CARGO) $(UNOPTIMISED_CRANELIFT) test --manifest-path $$dir/Cargo.toml; \
	done

# The kind suite's static proof (tests/kind/README.md): YAML, WasmPlugins, Kubernetes objects,
# shellcheck, the dry run, and a self-test showing each check refuses a broken input; then
# every README.zh-CN.md against its README.md (headings, code blocks, table keys, links).
.PHONY: test-static e2e-kind
test-static: setup
	$(WORKSPACE_BUILD)
	tests/kind/static-check.sh --self-test
	scripts/check-translations.py --self-test

# Every folder in plugins/ and examples/ is a complete template (crate, tests, README with a
# config table and security notes; for plugins wasmplugin.yaml and an envoy.yaml that Envoy
# accepts with the built plugin loaded and configured, so make run name=X works).
.PHONY: test-templates
test-templates: build
	scripts/check-templates.py --envoy .venv/bin/envoy --self-test

# The published crates: their docs build without a warning (and every public item has
# docs: #![warn(missing_docs)] in each), and each packages and builds from its .crate alone,
# the four together through cargo's temporary local registry (they are not on crates.io yet).
PUBLISHED := -p weir-abi -p weir-sdk -p weir-runtime -p weir-cli
.PHONY: lint
# Standalone crates (examples, test and bench guests) are formatted like the workspace.
FMT_MANIFESTS := $(wildcard examples/*/Cargo.toml) runtime/test-plugins/Cargo.toml \
  runtime/bench-plugins/Cargo.toml tests/fidelity/guests/exerciser/Cargo.toml
lint: setup ## rustfmt and clippy (-D warnings) on every crate; cargo doc (no warnings) and cargo package (verified) for weir-abi, weir-sdk, weir-runtime, weir-cli
	$(CARGO) fmt --all --check
	@for m in $(FMT_MANIFESTS); do $(CARGO) fmt --all --check --manifest-path $$m || { echo "cargo fmt --all --manifest-path $$m"; exit 1; }; done
	$(CARGO) clippy -q --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -q --no-deps --all-features $(PUBLISHED)
	@# cargo verifies each .crate against the others unpacked under
	@# $$CARGO_HOME/registry/src/-<hash of this checkout's path>/ and never unpacks a version
	@# it finds there again: a checkout packaged before would verify against its old sources.
	rm -rf $(addprefix "$${CARGO_HOME:-$$HOME/.cargo}"/registry/src/-*/,$(addsuffix -*,$(patsubst -p,,$(PUBLISHED))))
	$(CARGO) $(UNOPTIMISED_CRANELIFT) package -q --allow-dirty $(PUBLISHED)

e2e-kind: ## kind + Istio end-to-end suite; needs Docker, kind, istioctl (script exit 77 = skipped)
	tests/kind/e2e.sh all

demo: build ## The example auth chain in a real Envoy: OpenID login → jwt_authn → acl-check → check-header
	@echo "==> building the demo (first time ~5-10 min on 2 cores; later runs take seconds)"
	$(CARGO) build -p weir-envoy-tests --example demo
	@echo "==> running the demo"
	$(CARGO) run -q -p weir-envoy-tests --example demo

# The demo checks every hop it prints (it exits non-zero when one is wrong): keep it working.
test-demo: build
	@echo "==> the demo (the example auth chain in Envoy; output hidden, it fails on a wrong hop)"
	$(WORKSPACE_BUILD)
	$(DEBUG_DIR)/examples/demo > /dev/null

soak: build ## The example auth chain under load for 60 s while the policy server and the OpenID Provider restart
	$(CARGO) run -q -p weir-envoy-tests --example soak

# The soak with 16 s of load (same faults, same checks; it exits non-zero on a violation).
# Its summary is shown only when it fails.
test-soak: build
	$(WORKSPACE_BUILD)
	@out=$$($(DEBUG_DIR)/examples/soak --seconds 16) || { echo "$$out"; exit 1; }

run: build ## Run a plugin's or example's envoy.yaml locally: make run name=hello
	@test -n "$(name)" || { echo "usage: make run name=<plugin or example>"; exit 2; }
	@dir=$$(for d in plugins/$(name) examples/$(name); do [ -f $$d/envoy.yaml ] && echo $$d && break; done); \
	  test -n "$$dir" || { echo "no plugins/$(name)/envoy.yaml or examples/$(name)/envoy.yaml"; exit 2; }; \
	  echo "==> $$dir/envoy.yaml on 127.0.0.1:10000 (admin :9901); Ctrl-C stops it"; \
	  exec .venv/bin/envoy -c $$dir/envoy.yaml --concurrency 1 --log-level info

bench: build ## Benchmarks (criterion, SDK overhead; check-header vs jwt_authn; the chain in Envoy); numbers go in the README
	$(CARGO) bench -p weir-runtime
	$(CARGO) run -q --release -p weir-envoy-tests --example host_call_bench
	$(CARGO) run -q --release -p weir-envoy-tests --example authz_bench
	$(CARGO) run -q --release -p weir-envoy-tests --example chain_bench
	$(CARGO) run -q --release -p weir-envoy-tests --example login_bench
	@echo "plugin sizes after wasm-opt (budgets: scripts/build-plugins.sh):"
	@ls -l target/plugins/*.wasm | awk '{printf "  %-40s %8d B\n", $$NF, $$5}'

# Random requests through each plugin in weir-runtime: 1,000,000 in all, 0 traps allowed
# (`cargo test` runs 3,000 per plugin). The seed is printed; WEIR_FUZZ_SEED=<n> replays it.
fuzz: setup ## Fuzz header-append, acl-check, check-header (1,000,000 in all) and openid-connect (1,000,000)
	WEIR_FUZZ_REQUESTS=600000 $(CARGO) test -q -p header-append --test fuzz -- --nocapture
	WEIR_FUZZ_REQUESTS=250000 $(CARGO) test -q -p acl-check --test fuzz -- --nocapture
	WEIR_FUZZ_REQUESTS=150000 $(CARGO) test -q -p check-header --test fuzz -- --nocapture
	OIDC_RANDOM_REQUESTS=1000000 $(CARGO) test -q -p openid-connect randomized -- --nocapture

clean-wasm: ## Remove built plugins
	rm -rf target/plugins target/weir-wasm
