# shellcheck shell=bash
# Shared by e2e.sh and its parts: settings, the command wrapper behind --dry-run, the
# prerequisite check and the pass/fail tally. Sourced, never run.
# The settings are read by the files that source this one:
# shellcheck disable=SC2034

# Versions the suite was written against; change them here only (README.md, "Version matrix",
# says where each comes from). The node image is pinned by digest: kind only promises that an
# image works with the kind release it was built for (here v0.30.0), and the tag alone can move.
ISTIO_VERSION="${ISTIO_VERSION:-1.28.0}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a}"
REGISTRY_IMAGE="${REGISTRY_IMAGE:-docker.io/library/registry:2.8.3}"
HTTPBIN_IMAGE="${HTTPBIN_IMAGE:-docker.io/mccutchen/go-httpbin:v2.15.0}"
CURL_IMAGE="${CURL_IMAGE:-docker.io/curlimages/curl:8.16.0}"

CLUSTER_NAME="weir-e2e"
KUBE_CONTEXT="kind-$CLUSTER_NAME"
# The open registry: pushed to from the host as localhost:5001, named kind-registry:5000
# inside the cluster (containerd certs.d for pod images, WASM_INSECURE_REGISTRIES for plugins).
REGISTRY_NAME="kind-registry"
REGISTRY_HOST_PORT="${REGISTRY_HOST_PORT:-5001}"
REGISTRY="kind-registry:5000"
# The registry behind htpasswd. The distribution registry has no per-repository access
# control, so "one protected path" is this second registry on the same network.
PRIVATE_REGISTRY_NAME="kind-registry-private"
PRIVATE_REGISTRY_HOST_PORT="${PRIVATE_REGISTRY_HOST_PORT:-5002}"
PRIVATE_REGISTRY="kind-registry-private:5000"
PRIVATE_USER="weir"
PRIVATE_PASSWORD="weir-e2e-password"
# Its htpasswd line: bcrypt (cost 5) of PRIVATE_PASSWORD, made once with Python's crypt
# module. A test credential for a registry that lives as long as the run.
# shellcheck disable=SC2016 # a literal hash, not an expansion
PRIVATE_HTPASSWD='weir:$2b$05$GFyDXbTMo/Dqih9TunD/Ke6Sml1YFigF0DD4pYF3JznfTtB5T4uga'

TEST_NS="weir-e2e"       # httpbin (with a sidecar) and the curl client (without)
AUTH_NS="weir-auth"      # the OpenID Provider and the policy server
GATEWAY_NS="istio-ingress"

# Exit statuses, documented in README.md.
EXIT_PASS=0
EXIT_FAIL=1
EXIT_USAGE=2
EXIT_SKIP=77   # a prerequisite is missing: nothing was run (automake's "skipped")

DRY_RUN="${DRY_RUN:-0}"
RENDER_FAILED=0   # set when a --render step (weir manifest, kubectl create, openssl) fails
PASSED=0
FAILED=0
FAILED_NAMES=()

say() { printf '==> %s\n' "$*" >&2; }

# Prints a command as it would be typed, then runs it unless this is a dry run.
run() {
  printf '+ %s\n' "$(quote "$@")"
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  "$@"
}

# Like run, with stdin from a file (printed as `< FILE`).
run_in() {
  local input="$1"; shift
  printf '+ %s < %s\n' "$(quote "$@")" "$input"
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  "$@" <"$input"
}

# Like run, with stdout to a file (printed as `> FILE`).
run_out() {
  local output="$1"; shift
  printf '+ %s > %s\n' "$(quote "$@")" "$output"
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  "$@" >"$output"
}

# Like run_out, for commands that only write files (kubectl create --dry-run=client): these
# also run in --render mode, so the static proof validates what they write.
render_out() {
  local output="$1"; shift
  printf '+ %s > %s\n' "$(quote "$@")" "$output"
  if [ "$DRY_RUN" = 1 ] && [ "${RENDER:-0}" != 1 ]; then return 0; fi
  "$@" >"$output" || { RENDER_FAILED=1; return 1; }
}

# Like run, for commands that only make local files (openssl): they run in --render mode too.
render_run() {
  printf '+ %s\n' "$(quote "$@")"
  if [ "$DRY_RUN" = 1 ] && [ "${RENDER:-0}" != 1 ]; then return 0; fi
  "$@" 2>/dev/null || { RENDER_FAILED=1; return 1; }
}

# Runs a command and prints its stdout for $(...); in a dry run prints DRY_VALUE instead
# (default: empty), so callers go on through the same path. The command line goes to fd 3
# (e2e.sh opens it on the real stdout), which $(...) does not capture.
capture() {
  printf '+ %s\n' "$(quote "$@")" >&3
  if [ "$DRY_RUN" = 1 ]; then printf '%s' "${DRY_VALUE:-}"; return 0; fi
  "$@"
}

quote() {
  local out="" arg
  for arg in "$@"; do out+="$(printf '%q' "$arg") "; done
  printf '%s' "${out% }"
}

kc() { run kubectl --context "$KUBE_CONTEXT" "$@"; }
kc_capture() { capture kubectl --context "$KUBE_CONTEXT" "$@"; }

# The tools the suite needs on PATH. Prints each missing one with where to get it and
# returns non-zero if any is missing; the Docker engine is checked too, not only its client.
check_prereqs() {
  local missing=0 tool
  local -A hint=(
    [docker]="Docker Engine >= 24 (https://docs.docker.com/engine/install/)"
    [kind]="kind >= v0.30.0 (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
    [istioctl]="istioctl $ISTIO_VERSION (https://istio.io/latest/docs/setup/getting-started/#download)"
    [kubectl]="kubectl >= 1.32 (https://kubernetes.io/docs/tasks/tools/)"
    [jq]="jq (apt-get install jq)"
    [curl]="curl (apt-get install curl)"
    [openssl]="openssl (apt-get install openssl)"
    [cargo]="Rust toolchain (rustup), to build weir and the plugins"
  )
  for tool in docker kind istioctl kubectl jq curl openssl cargo; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      printf 'missing: %-8s install %s\n' "$tool" "${hint[$tool]}" >&2
      missing=1
    fi
  done
  if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
    printf 'missing: %-8s the docker client is installed but no Docker engine answers (docker info failed)\n' "engine" >&2
    missing=1
  fi
  if command -v istioctl >/dev/null 2>&1; then
    local have
    have="$(istioctl version --remote=false --short 2>/dev/null || true)"
    if [ "$have" != "$ISTIO_VERSION" ]; then
      printf 'warning: istioctl is %s, the suite pins %s (set ISTIO_VERSION to override)\n' "${have:-unknown}" "$ISTIO_VERSION" >&2
    fi
  fi
  return "$missing"
}

pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); FAILED_NAMES+=("$1"); printf 'FAIL  %s: %s\n' "$1" "$2"; }

# Runs one case function; its non-zero return (with a reason on stdout's last line from
# `because`) is a failure. In a dry run the case's commands are printed and nothing is judged.
run_case() {
  local name="$1" fn="$2" reason
  printf -- '--- case %s\n' "$name"
  if [ "$DRY_RUN" = 1 ]; then
    "$fn" || true
    printf 'DRY   %s (commands above; not judged)\n' "$name"
    return 0
  fi
  CASE_REASON=""
  if "$fn"; then
    pass "$name"
  else
    reason="${CASE_REASON:-see the output above}"
    fail "$name" "$reason"
  fi
}

# Sets the reason a case fails with and returns 1: `expect … || because "…"`.
because() { CASE_REASON="$1"; return 1; }

# `verdict CODE REASON1 REASON2 …`: CODE 0 passes; CODE N fails with REASON N.
verdict() {
  local code="$1"
  shift
  if [ "$code" = 0 ]; then return 0; fi
  local reasons=("$@")
  because "${reasons[code - 1]}"
}

# Repeats a command until it succeeds or the time runs out (seconds); istiod and the agent
# apply WasmPlugin changes asynchronously, so every check on the data plane polls.
eventually() {
  local timeout="$1"; shift
  if [ "$DRY_RUN" = 1 ]; then "$@"; return 0; fi
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 2
  done
}

# jq, except in a dry run: reading the proxy's config is not a command against the cluster,
# and a dry run must work where jq is not installed.
json() {
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  jq "$@"
}
