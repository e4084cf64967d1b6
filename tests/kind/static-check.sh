#!/usr/bin/env bash
# The kind suite's static proof, run by `make test` where no Docker engine exists:
#   1. every YAML file in tests/kind/, examples/ and plugins/ parses; every WasmPlugin passes
#      `weir manifest validate`; every Kubernetes built-in object passes kubernetes-validate
#      --strict (offline JSON schemas of Kubernetes $K8S_VERSION, the kind node's version);
#      Istio/kind resources without an offline schema get the structural checks of
#      static/manifests.py;
#   2. the suite's dry run prints every command, and the manifests it generates on the way
#      (`weir manifest`, `kubectl create --dry-run=client`) pass the same checks as 1;
#   3. the image stage runs for real against two local docker-registry processes
#      (check_image_stage below);
#   4. every shell script passes shellcheck, and lib/sign-in.sh signs in through the real
#      OpenID Provider of tests/idp (check_sign_in below);
#   5. --self-test: each YAML check and shellcheck fail on a broken input (none passes vacuously).
# Prints one PASS/FAIL line per check and "static-check: N passed, N failed"; exit 1 on failure.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
K8S_VERSION="1.34.0"
WEIR="${WEIR:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/weir}"
VENV="${VENV:-$ROOT/.venv}"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/weir-static.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'PASS  %s\n' "$1"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; }

# kubectl renders the suite's Secrets (create --dry-run=client, no cluster needed); it is not
# a Debian package: install it as https://kubernetes.io/docs/tasks/tools/ says.
for tool in "$WEIR" "$VENV/bin/kubernetes-validate" "$VENV/bin/python" shellcheck kubectl node; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "static-check: $tool not found; run scripts/setup.sh and cargo build -p weir-cli --bin weir (kubectl: see the comment above)" >&2
    exit 1
  fi
done

# Sorts, then validates, every YAML document under the given roots; LABEL names the check.
check_yaml() {
  local label="$1" out
  shift
  out="$(mktemp -d "$SCRATCH/yaml.XXXXXX")"
  if ! "$VENV/bin/python" "$HERE/static/manifests.py" "$out" "$@" >"$out.log" 2>&1; then
    cat "$out.log"; bad "$label: parse and sort"; return 1
  fi
  sed 's/^/      /' "$out.log"
  local status=0 files
  mapfile -t files < <(find "$out/wasmplugin" -name '*.yaml' | sort)
  if ((${#files[@]})) && ! "$WEIR" manifest validate "${files[@]}" >"$out.weir" 2>&1; then
    cat "$out.weir"; status=1
  fi
  mapfile -t files < <(find "$out/builtin" -name '*.yaml' | sort)
  if ((${#files[@]})) && ! "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn \
      -k "$K8S_VERSION" "${files[@]}" >"$out.k8s" 2>&1; then
    cat "$out.k8s"; status=1
  fi
  if [ "$status" = 0 ]; then ok "$label"; else bad "$label"; fi
  return "$status"
}

check_shell() {
  local label="$1"
  shift
  if shellcheck -x -P SCRIPTDIR "$@"; then ok "$label"; else bad "$label"; return 1; fi
}

shell_scripts() {
  find "$ROOT/tests/kind" "$ROOT/scripts" "$ROOT/tests/idp" -path '*/node_modules' -prune -o -type f \
    \( -name '*.sh' -o -name 'weir-wasi-run' \) -print | sort
}

# Every command of the suite's full run must appear in the dry run.
DRY_RUN_MUST_SHOW=(
  "kind create cluster --name weir-e2e"
  "docker exec -i weir-e2e-control-plane cp /dev/stdin /etc/containerd/certs.d/kind-registry:5000/hosts.toml"
  "docker network connect kind kind-registry"
  "local-registry-hosting.yaml"
  "istioctl install --context kind-weir-e2e -y -f"
  "REGISTRY_AUTH=htpasswd"
  "oci://localhost:5001/weir/header-append:compat --format compat"
  "oci://localhost:5001/weir/header-append:artifact --format artifact"
  "oci://localhost:5001/weir/acl-check:artifact --format artifact"
  "oci://localhost:5001/weir/check-header:artifact --format artifact"
  "--password-stdin"
  "manifest -q --name openid-connect"
  "--image-pull-secret wrong-password-pull-secret"
  "--match-port 8081"
  "--env WEIR_E2E_ENV=from-vmconfig"
  "--image-pull-policy Always"
  "proxy-config listener"
  "proxy-config ecds"
  "kind delete cluster --name weir-e2e"
  "docker rm -f kind-registry-private"
)

check_dry_run() {
  local render="$SCRATCH/render" log="$SCRATCH/dry-run.log" line missing=0
  mkdir -p "$render"
  if ! timeout 120 "$HERE/e2e.sh" --dry-run --render "$render" all >"$log" 2>&1; then
    cat "$log"; bad "dry run exits 0"; return 1
  fi
  ok "dry run exits 0 ($(grep -c '^+ ' "$log") commands printed)"
  # Every `weir manifest … -o FILE` the dry run printed must have written FILE.
  local file written=0
  while read -r file; do
    if [ -s "$file" ]; then written=$((written + 1)); else echo "not written: $file"; missing=1; fi
  done < <(grep ' manifest -q --name ' "$log" | sed -n 's/.* -o \([^ ]*\)$/\1/p')
  if [ "$written" = 0 ]; then echo "the dry run rendered no WasmPlugin"; missing=1; fi
  for line in "${DRY_RUN_MUST_SHOW[@]}"; do
    if ! grep -qF -- "$line" "$log"; then echo "dry run never printed: $line"; missing=1; fi
  done
  if [ "$missing" = 0 ]; then ok "dry run shows every stage"; else bad "dry run shows every stage"; fi
  check_yaml "manifests generated by the dry run validate" "$render"
}

# The suite's image stage for real, without Docker: two Debian docker-registry processes on
# 127.0.0.1 stand in for kind-registry (open) and kind-registry-private (htpasswd, over plain
# HTTP with the suite's URL realm). push_all from lib/plugins.sh pushes every plugin in both
# formats; each image is pulled back and compared with its module, the private one through a
# Secret written by `kubectl create secret docker-registry` (and refused with a wrong one).
check_image_stage() {
  local dir="$SCRATCH/registries" port1 port2 name format pid1 pid2 failures=0
  mkdir -p "$dir"
  # The modules build-plugins.sh wrote (make test builds them first); what each image must hold.
  plugin_module() { printf '%s' "$ROOT/target/plugins/$1.wasm"; }
  for name in header-append acl-check check-header openid-connect; do
    [ -f "$ROOT/plugins/$name/Cargo.toml" ] || continue
    if [ ! -f "$(plugin_module "$name")" ]; then bad "image stage: $(plugin_module "$name") missing (make build)"; return 1; fi
  done
  if ! command -v docker-registry >/dev/null; then bad "image stage: docker-registry missing (scripts/setup.sh)"; return 1; fi
  read -r port1 port2 < <("$VENV/bin/python" -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
  printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s/open}}\nhttp: {addr: "127.0.0.1:%s"}\n' "$dir" "$port1" >"$dir/open.yml"
  printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s/private}}\nhttp: {addr: "127.0.0.1:%s"}\nauth: {htpasswd: {realm: "http://kind-registry-private:5000/", path: %s/htpasswd}}\n' "$dir" "$port2" "$dir" >"$dir/private.yml"
  # shellcheck source=lib/common.sh
  (. "$HERE/lib/common.sh"; printf '%s\n' "$PRIVATE_HTPASSWD") >"$dir/htpasswd"
  docker-registry serve "$dir/open.yml" >"$dir/open.log" 2>&1 & pid1=$!
  docker-registry serve "$dir/private.yml" >"$dir/private.log" 2>&1 & pid2=$!
  local tries=0
  until curl -s -o /dev/null "http://127.0.0.1:$port1/v2/" && curl -s -o /dev/null "http://127.0.0.1:$port2/v2/"; do
    tries=$((tries + 1)); if ((tries > 50)); then break; fi; sleep 0.1
  done
  (
    set -e
    DRY_RUN=0 WORK="$dir" REGISTRY_HOST_PORT="$port1" PRIVATE_REGISTRY_HOST_PORT="$port2" WEIR_BIN="$WEIR"
    # shellcheck source=lib/common.sh
    . "$HERE/lib/common.sh"
    # shellcheck source=lib/plugins.sh
    . "$HERE/lib/plugins.sh"
    exec 3>"$dir/commands.log"
    push_all
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port2/v2/")" = 401 ]
    kubectl create secret docker-registry s --docker-server="localhost:$port2" --docker-username="$PRIVATE_USER" \
      --docker-password="$PRIVATE_PASSWORD" --dry-run=client -o yaml >"$dir/good-secret.yaml"
    kubectl create secret docker-registry s --docker-server="localhost:$port2" --docker-username="$PRIVATE_USER" \
      --docker-password=wrong --dry-run=client -o yaml >"$dir/bad-secret.yaml"
    for name in "${PLUGINS[@]}"; do
      have_plugin "$name" || continue
      for format in "${FORMATS[@]}"; do
        ref="localhost:$port1/weir/$name:$format"
        [[ "${DIGEST[$ref]}" =~ ^sha256:[0-9a-f]{64}$ ]]
        "$WEIR" pull -q "oci://$ref" --insecure --sha256 "${DIGEST[$ref]}" -o "$dir/$name-$format.wasm" >/dev/null
        cmp -s "$dir/$name-$format.wasm" "$(plugin_module "$name")"
      done
      ref="localhost:$port2/weir/$name:compat"
      "$WEIR" pull -q "oci://$ref" --insecure --pull-secret "$dir/good-secret.yaml" \
        --sha256 "${DIGEST[$ref]}" -o "$dir/$name-private.wasm" >/dev/null
      cmp -s "$dir/$name-private.wasm" "$(plugin_module "$name")"
      if "$WEIR" pull -q "oci://$ref" --insecure --pull-secret "$dir/bad-secret.yaml" -o "$dir/x.wasm" 2>/dev/null; then
        echo "a wrong pull secret was accepted for $ref"; exit 1
      fi
    done
    printf '%s\n' "${!DIGEST[@]}" | wc -l >"$dir/pushed"
  ) >"$dir/stage.log" 2>&1 || failures=1
  kill "$pid1" "$pid2" 2>/dev/null; wait "$pid1" "$pid2" 2>/dev/null
  if [ "$failures" = 0 ]; then
    ok "image stage on local registries: $(cat "$dir/pushed") images pushed by push_all, pulled back identical; wrong pull secret refused"
  else
    cat "$dir/commands.log" "$dir/stage.log" 2>/dev/null | tail -20
    bad "image stage on local registries"
  fi
}

# lib/sign-in.sh (the seed-chain case's browser) against the real OpenID Provider of
# tests/idp: from an authorization request through its login and consent forms to the
# client's callback with a code. Here the callback is a local HTTP server, in the suite the
# gateway.
check_sign_in() {
  local dir="$SCRATCH/sign-in" cb_port idp_pid cb_pid issuer tries=0 url status=0
  mkdir -p "$dir"
  cb_port="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$VENV/bin/python" -c 'import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("callback " + self.path).encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$cb_port" & cb_pid=$!
  node "$ROOT/tests/idp/provider/provider.mjs" --port 0 --issuer-path /realms/ingress \
    --clients "[{\"client_id\":\"weir-gateway\",\"client_secret\":\"s\",\"redirect_uris\":[\"http://127.0.0.1:$cb_port/oauth2/callback\"]}]" \
    >"$dir/idp.out" 2>"$dir/idp.err" & idp_pid=$!
  until issuer="$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' "$dir/idp.out")" && [ -n "$issuer" ]; do
    tries=$((tries + 1)); if ((tries > 100)); then break; fi; sleep 0.1
  done
  url="$issuer/auth?client_id=weir-gateway&response_type=code&scope=openid&state=st&nonce=no"
  url+="&redirect_uri=http%3A%2F%2F127.0.0.1%3A$cb_port%2Foauth2%2Fcallback"
  url+="&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
  timeout 30 sh "$HERE/lib/sign-in.sh" "$url" alice >"$dir/out" 2>"$dir/hops" || status=1
  kill "$cb_pid" "$idp_pid" 2>/dev/null; wait "$cb_pid" "$idp_pid" 2>/dev/null
  if [ "$status" = 0 ] && grep -q '^STATUS 200' "$dir/out" && grep -q '^callback /oauth2/callback?code=.*&state=st' "$dir/out"; then
    ok "sign-in.sh signs in through the real provider's forms ($(grep -c '^hop' "$dir/hops") hops)"
  else
    cat "$dir/hops" "$dir/out" "$dir/idp.err" 2>/dev/null | tail -20
    bad "sign-in.sh signs in through the real provider's forms"
  fi
}

# Each check must fail on a broken copy, or it proves nothing.
self_test() {
  local broken="$SCRATCH/broken"
  mkdir -p "$broken"/{wasmplugin,builtin,unparsable,unknown,shell}
  sed 's/^  phase: STATS$/  phase: BOGUS/' "$ROOT/examples/hello/wasmplugin.yaml" >"$broken/wasmplugin/wasmplugin.yaml"
  grep -q 'phase: BOGUS' "$broken/wasmplugin/wasmplugin.yaml" || { bad "self-test: broken WasmPlugin made"; return; }
  sed 's/^        image: docker.io\/curlimages.*/&\n        imagePullPolicyy: Always/' "$HERE/k8s/workloads.yaml" >"$broken/builtin/workloads.yaml"
  grep -q 'imagePullPolicyy' "$broken/builtin/workloads.yaml" || { bad "self-test: broken Deployment made"; return; }
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n' >"$broken/unparsable/bad.yaml"
  printf 'apiVersion: example.com/v1\nkind: Mystery\nmetadata: {name: x}\n' >"$broken/unknown/mystery.yaml"
  # shellcheck disable=SC2016 # the broken script's text, written as is
  printf '#!/usr/bin/env bash\nfiles=$(ls /tmp)\nrm $files\n' >"$broken/shell/bad.sh"
  local what
  for what in wasmplugin builtin unparsable unknown; do
    # In a subshell: the deliberate failures must not count against this run.
    if (check_yaml "self-test $what" "$broken/$what") >"$SCRATCH/self-$what.log" 2>&1; then
      cat "$SCRATCH/self-$what.log"; bad "self-test: a broken $what is refused"
    else
      ok "self-test: a broken $what is refused ($(grep -m1 -ioE 'error[^ ]*:? .{0,80}|FAIL.*' "$SCRATCH/self-$what.log" | head -1))"
    fi
  done
  mkdir -p "$broken/render"
  if WEIR_BIN=/bin/false timeout 120 "$HERE/e2e.sh" --dry-run --render "$broken/render" all >/dev/null 2>&1; then
    bad "self-test: a dry run whose weir manifest fails exits non-zero"
  else ok "self-test: a dry run whose weir manifest fails exits non-zero"; fi
  if shellcheck "$broken/shell/bad.sh" >/dev/null 2>&1; then bad "self-test: shellcheck refuses a broken script"
  else ok "self-test: shellcheck refuses a broken script"; fi
}

main() {
  local scripts
  check_yaml "YAML in tests/kind, examples and plugins validates" "$ROOT/tests/kind" "$ROOT/examples" "$ROOT/plugins"
  mapfile -t scripts < <(shell_scripts)
  check_shell "shellcheck (${#scripts[@]} scripts)" "${scripts[@]}"
  check_dry_run
  check_image_stage
  check_sign_in
  if [ "${1:-}" = --self-test ] || [ "${1:-}" = --all ]; then self_test; fi
  echo "static-check: $passed passed, $failed failed"
  ((failed == 0))
}

main "$@"
