# shellcheck shell=bash
# The test cases. Each one writes its WasmPlugins with `weir manifest`, applies them, checks
# the data plane (or the proxy's config dump), and deletes what it applied. Sourced by e2e.sh.
# jq programs are single-quoted on purpose; CASES, GATEWAY and SHA_ARGS are shared:
# shellcheck disable=SC2016,SC2034

CASES=(header-append-compat header-append-artifact phase-priority-order pull-policy
  fail-open-bad-url fail-close-bad-url pull-secret-success pull-secret-failure
  vm-config-env match-port seed-chain)

HTTPBIN="http://httpbin.$TEST_NS.svc.cluster.local"
# HTTPS: openid-connect's cookies are always Secure, and curl (like a browser) neither
# stores nor sends those over plain HTTP. The certificate is self-signed, hence curl -k.
GATEWAY_HOST="istio-ingressgateway.$GATEWAY_NS.svc.cluster.local"
GATEWAY="https://$GATEWAY_HOST"
MISSING_IMAGE="$REGISTRY/weir/does-not-exist:missing"

# Response headers (lower-cased, CR stripped) and status of one request from the curl pod.
request() {
  DRY_VALUE="HTTP/1.1 200 OK" kc_capture -n "$TEST_NS" exec deploy/curl -- \
    curl -k -sS -o /dev/null -D - --max-time 10 "$@" | tr -d '\r' | tr '[:upper:]' '[:lower:]'
}
status_of() { request "$@" | head -1 | cut -d' ' -f2; }
header_of() { local name="$1"; shift; request "$@" | sed -n "s/^$name: //p"; }

has_header() { [ "$(header_of "$1" "${@:3}")" = "$2" ]; }
lacks_header() { [ -z "$(header_of "$1" "${@:2}")" ]; }
status_is() { [ "$(status_of "${@:2}")" = "$1" ]; }

apply() { kc apply -f "$1"; }
delete() { kc delete --ignore-not-found -f "$1"; }

httpbin_pod() { DRY_VALUE="httpbin-0" kc_capture -n "$TEST_NS" get pod -l app=httpbin -o 'jsonpath={.items[0].metadata.name}'; }

# The extension configs (ECDS) httpbin's proxy holds, as JSON.
ecds_json() { DRY_VALUE="{}" capture istioctl --context "$KUBE_CONTEXT" proxy-config ecds "$(httpbin_pod).$TEST_NS" -o json; }

# The @type of the filter Envoy runs under NAME: a Wasm filter, or the RBAC filter Istio
# substitutes when the module could not be fetched.
ecds_type_of() {
  ecds_json | json -r --arg n "$1" '[.. | objects | select(.name? == $n) | .typed_config?["@type"]? // empty] | first // empty'
}

simple_plugin() { # FILE NAME FORMAT HEADER VALUE [weir manifest args…]
  local file="$1" name="$2" format="$3" header="$4" value="$5"; shift 5
  local url="$REGISTRY/weir/header-append:$format"
  plugin_config "$WORK/$name.json" "{\"response_headers_to_add\":[{\"name\":\"$header\",\"value\":\"$value\"}]}"
  sha_for "$url"
  wasmplugin "$file" --name "$name" -n "$TEST_NS" --url "oci://$url" \
    "${SHA_ARGS[@]}" --selector app=httpbin \
    --plugin-config "$WORK/$name.json" "$@"
}

header_append_in() {
  local format="$1" file="$WORK/header-append-$1.yaml"
  simple_plugin "$file" "header-append-$format" "$format" x-weir-e2e "$format" --fail-strategy FAIL_CLOSE
  apply "$file"
  eventually 120 has_header x-weir-e2e "$format" "$HTTPBIN:8000/status/200" || { delete "$file"; because "no x-weir-e2e: $format on responses after 120 s"; return 1; }
  delete "$file"
}
case_header_append_compat() { header_append_in compat; }
case_header_append_artifact() { header_append_in artifact; }

# Five plugins in three phases; the order is read from the inbound listener in Envoy's config.
ORDER=(order-authn order-authz-high order-authz-low order-authz-unset order-stats)
render_order() {
  simple_plugin "$WORK/order-authn.yaml" order-authn compat x-order-authn 1 --phase AUTHN
  simple_plugin "$WORK/order-authz-high.yaml" order-authz-high compat x-order-authz-high 1 --phase AUTHZ --priority 100
  simple_plugin "$WORK/order-authz-low.yaml" order-authz-low compat x-order-authz-low 1 --phase AUTHZ --priority 1
  simple_plugin "$WORK/order-authz-unset.yaml" order-authz-unset compat x-order-authz-unset 1 --phase AUTHZ
  simple_plugin "$WORK/order-stats.yaml" order-stats compat x-order-stats 1 --phase STATS
}
inbound_filter_names() {
  DRY_VALUE="[]" capture istioctl --context "$KUBE_CONTEXT" proxy-config listener "$(httpbin_pod).$TEST_NS" --port 15006 -o json |
    json -c --arg first "$TEST_NS.${ORDER[0]}" '[.. | objects | select(has("http_filters")) | [.http_filters[].name] | select(index($first))] | first // []'
}
in_order() {
  local names want
  names="$(inbound_filter_names)"
  want="$(printf '%s\n' "${ORDER[@]/#/$TEST_NS.}" | json -R . | json -sc .)"
  printf 'inbound http_filters: %s\n' "$names"
  [ "$(json -n --argjson f "${names:-[]}" --argjson w "${want:-[]}" \
    '[$w[] as $n | $f | index($n)] as $i | ($i | all(. != null)) and ($i == ($i | sort))
     and ($i[-1] < ($f | index("envoy.filters.http.router")))')" = true ]
}
case_phase_priority_order() {
  local f ok=0
  render_order
  for f in "${ORDER[@]}"; do apply "$WORK/$f.yaml"; done
  eventually 120 in_order || ok=1
  for f in "${ORDER[@]}"; do delete "$WORK/$f.yaml"; done
  [ "$ok" = 0 ] || because "filters not in AUTHN < AUTHZ(100) < AUTHZ(1) < AUTHZ(unset) < STATS < router order"
}

# The same tag holds hello, then header-append. `greeting` is valid config for both: hello
# sets x-hello to it, header-append's flat form appends a `greeting` header.
pull_policy_plugin() { # POLICY GREETING
  plugin_config "$WORK/pull-policy.json" "{\"greeting\":\"$2\"}"
  wasmplugin "$WORK/pull-policy-$2.yaml" --name pull-policy -n "$TEST_NS" \
    --url "oci://$REGISTRY/weir/pull-policy:moving" --selector app=httpbin \
    --image-pull-policy "$1" --fail-strategy FAIL_CLOSE --plugin-config "$WORK/pull-policy.json"
}
case_pull_policy() {
  local ref="localhost:$REGISTRY_HOST_PORT/weir/pull-policy:moving" url="$HTTPBIN:8000/status/200" ok=0
  push_plugin hello compat "$ref" --insecure
  pull_policy_plugin IfNotPresent first
  apply "$WORK/pull-policy-first.yaml"
  eventually 120 has_header x-hello first "$url" || ok=1
  push_plugin header-append compat "$ref" --insecure
  pull_policy_plugin IfNotPresent second
  apply "$WORK/pull-policy-second.yaml"
  # IfNotPresent: the new config arrives, the cached module (hello) stays.
  if [ "$ok" = 0 ] && eventually 120 has_header x-hello second "$url" && lacks_header greeting "$url"; then
    pull_policy_plugin Always third
    apply "$WORK/pull-policy-third.yaml"
    # Always: the changed resource makes the agent pull the tag again: header-append now.
    eventually 120 has_header greeting third "$url" && lacks_header x-hello "$url" || ok=3
  else
    ok=2
  fi
  delete "$WORK/pull-policy-first.yaml"
  verdict "$ok" "hello's x-hello: first never appeared" \
    "IfNotPresent did not keep the cached module after the tag moved" \
    "Always did not pull the re-pushed tag (no greeting: third, or x-hello still there)"
}

bad_url_plugin() { # NAME STRATEGY
  wasmplugin "$WORK/$1.yaml" --name "$1" -n "$TEST_NS" --url "oci://$MISSING_IMAGE" \
    --selector app=httpbin --fail-strategy "$2"
}
rbac_substituted() { ecds_type_of "$TEST_NS.$1" | grep -q 'rbac'; }
# Istio (pkg/wasm): a module that cannot be fetched is replaced by an RBAC filter, allow-all
# for FAIL_OPEN and deny-all (403) for anything else.
case_fail_open_bad_url() {
  local ok=0
  bad_url_plugin bad-url-open FAIL_OPEN
  apply "$WORK/bad-url-open.yaml"
  eventually 180 rbac_substituted bad-url-open || ok=1
  [ "$ok" = 0 ] && { status_is 200 "$HTTPBIN:8000/status/200" || ok=2; }
  delete "$WORK/bad-url-open.yaml"
  verdict "$ok" "the agent never replaced the unfetchable module with an RBAC filter" \
    "FAIL_OPEN with an unfetchable module did not answer 200"
}
case_fail_close_bad_url() {
  local ok=0
  bad_url_plugin bad-url-close FAIL_CLOSE
  apply "$WORK/bad-url-close.yaml"
  eventually 180 status_is 403 "$HTTPBIN:8000/status/200" || ok=1
  delete "$WORK/bad-url-close.yaml"
  eventually 120 status_is 200 "$HTTPBIN:8000/status/200" || ok=2
  verdict "$ok" "FAIL_CLOSE with an unfetchable module did not answer 403" \
    "requests did not recover to 200 after the plugin was deleted"
}

private_plugin() { # NAME SECRET
  local url="$PRIVATE_REGISTRY/weir/header-append:compat"
  plugin_config "$WORK/$1.json" '{"response_headers_to_add":[{"name":"x-weir-private","value":"pulled"}]}'
  sha_for "$url"
  wasmplugin "$WORK/$1.yaml" --name "$1" -n "$TEST_NS" --url "oci://$url" \
    "${SHA_ARGS[@]}" --selector app=httpbin --fail-strategy FAIL_CLOSE \
    --image-pull-secret "$2" --plugin-config "$WORK/$1.json"
}
case_pull_secret_success() {
  local ok=0
  render_pull_secrets "$WORK"
  apply "$WORK/pull-secret-good.yaml"
  private_plugin private-good private-registry-pull-secret
  apply "$WORK/private-good.yaml"
  eventually 120 has_header x-weir-private pulled "$HTTPBIN:8000/status/200" || ok=1
  delete "$WORK/private-good.yaml"
  [ "$ok" = 0 ] || because "the module from the htpasswd registry never ran (no x-weir-private: pulled)"
}
case_pull_secret_failure() {
  local ok=0 anonymous
  anonymous="$(DRY_VALUE=401 kc_capture -n "$TEST_NS" exec deploy/curl -- curl -s -o /dev/null -w '%{http_code}' "http://$PRIVATE_REGISTRY/v2/")"
  [ "$anonymous" = 401 ] || ok=1
  render_pull_secrets "$WORK"
  apply "$WORK/pull-secret-bad.yaml"
  private_plugin private-bad wrong-password-pull-secret
  apply "$WORK/private-bad.yaml"
  eventually 180 status_is 403 "$HTTPBIN:8000/status/200" || ok=2
  kc -n "$TEST_NS" logs "$(httpbin_pod)" -c istio-proxy --tail=200 | grep -i -m3 -E 'wasm.*(401|unauthori)' || true
  delete "$WORK/private-bad.yaml"
  eventually 120 status_is 200 "$HTTPBIN:8000/status/200" || ok=3
  verdict "$ok" "the private registry answered $anonymous, not 401, to an anonymous client" \
    "a wrong pull secret did not fail the fetch (no 403 under FAIL_CLOSE)" \
    "requests did not recover to 200 after the plugin was deleted"
}

# vmConfig.env: INLINE values and HOST keys as istiod writes them into the Wasm VM config.
# That the module reads them is shown by seed-chain, whose openid-connect takes its client
# secret from the VM environment.
env_in_ecds() {
  ecds_json | json -e --arg n "$TEST_NS.vm-config-env" '[.. | objects | select(.name? == $n)] | first
    | [.. | objects | select(has("environment_variables")) | .environment_variables] | first
    | (.key_values.WEIR_E2E_ENV == "from-vmconfig") and (.host_env_keys | index("POD_NAME") != null)' >/dev/null
}
case_vm_config_env() {
  local ok=0
  simple_plugin "$WORK/vm-config-env.yaml" vm-config-env compat x-weir-env 1 \
    --env WEIR_E2E_ENV=from-vmconfig --host-env POD_NAME
  apply "$WORK/vm-config-env.yaml"
  eventually 120 has_header x-weir-env 1 "$HTTPBIN:8000/status/200" || ok=1
  [ "$ok" = 0 ] && { env_in_ecds || ok=2; }
  delete "$WORK/vm-config-env.yaml"
  verdict "$ok" "the plugin with vmConfig.env never ran" \
    "the VM config lacks WEIR_E2E_ENV=from-vmconfig or host key POD_NAME"
}

case_match_port() {
  local ok=0
  simple_plugin "$WORK/match-port.yaml" match-port compat x-weir-port 8081 \
    --match-mode SERVER --match-port 8081
  apply "$WORK/match-port.yaml"
  eventually 120 has_header x-weir-port 8081 "$HTTPBIN:8001/status/200" || ok=1
  [ "$ok" = 0 ] && { lacks_header x-weir-port "$HTTPBIN:8000/status/200" || ok=2; }
  delete "$WORK/match-port.yaml"
  verdict "$ok" "the plugin matching port 8081 did not run on port 8081" \
    "the plugin matching port 8081 also ran on port 8080"
}
