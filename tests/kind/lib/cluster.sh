# shellcheck shell=bash
# Bringing the cluster up and tearing it down: the two registries, kind, Istio, the sample
# workloads and the in-cluster OpenID Provider + policy server. Sourced by e2e.sh.

registry_running() {
  [ "$(DRY_VALUE=false capture docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]
}

start_registries() {
  if ! registry_running "$REGISTRY_NAME"; then
    run docker run -d --restart=always --name "$REGISTRY_NAME" \
      -p "127.0.0.1:$REGISTRY_HOST_PORT:5000" "$REGISTRY_IMAGE"
  fi
  if ! registry_running "$PRIVATE_REGISTRY_NAME"; then
    printf '%s\n' "$PRIVATE_HTPASSWD" >"$WORK/htpasswd"
    # A URL realm: newer istio-agents refuse a 401 whose realm is not one (platform-facts).
    run docker run -d --restart=always --name "$PRIVATE_REGISTRY_NAME" \
      -p "127.0.0.1:$PRIVATE_REGISTRY_HOST_PORT:5000" \
      -v "$WORK/htpasswd:/auth/htpasswd:ro" \
      -e REGISTRY_AUTH=htpasswd \
      -e "REGISTRY_AUTH_HTPASSWD_REALM=http://$PRIVATE_REGISTRY/" \
      -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd \
      "$REGISTRY_IMAGE"
  fi
}

create_cluster() {
  if ! DRY_VALUE="" capture kind get clusters | grep -qx "$CLUSTER_NAME"; then
    run kind create cluster --name "$CLUSTER_NAME" --image "$KIND_NODE_IMAGE" \
      --config "$HERE/cluster/kind-config.yaml" --wait 180s
  fi
  # containerd on the node pulls pod images from kind-registry:5000 over plain HTTP.
  local node="$CLUSTER_NAME-control-plane" dir="/etc/containerd/certs.d/$REGISTRY"
  printf '[host."http://%s"]\n' "$REGISTRY" >"$WORK/hosts.toml"
  run docker exec "$node" mkdir -p "$dir"
  run_in "$WORK/hosts.toml" docker exec -i "$node" cp /dev/stdin "$dir/hosts.toml"
  local name
  for name in "$REGISTRY_NAME" "$PRIVATE_REGISTRY_NAME"; do
    if [ "$(DRY_VALUE=null capture docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$name")" = null ]; then
      run docker network connect kind "$name"
    fi
  done
  kc apply -f "$HERE/cluster/local-registry-hosting.yaml"
}

install_istio() {
  kc apply -f "$HERE/k8s/namespaces.yaml"
  run istioctl install --context "$KUBE_CONTEXT" -y -f "$HERE/cluster/istio-operator.yaml"
  kc -n "$GATEWAY_NS" rollout status deployment/istio-ingressgateway --timeout=180s
}

deploy_workloads() {
  kc apply -f "$HERE/k8s/workloads.yaml"
  kc -n "$TEST_NS" rollout status deployment/httpbin --timeout=180s
  kc -n "$TEST_NS" rollout status deployment/curl --timeout=180s
  # Plugins are pulled by istio-agent inside the pod, through the cluster's DNS: prove the
  # registry names resolve there before any case depends on it.
  kc -n "$TEST_NS" exec deploy/curl -- curl -fsS -o /dev/null "http://$REGISTRY/v2/"
}

# The policy server and the OpenID Provider run as pods built from this checkout.
deploy_auth_stack() {
  run docker build -t "localhost:$REGISTRY_HOST_PORT/weir-e2e/policy-server:dev" \
    -f "$HERE/images/policy-server.Dockerfile" "$ROOT/examples/policy-server"
  run docker build -t "localhost:$REGISTRY_HOST_PORT/weir-e2e/idp:dev" \
    -f "$HERE/images/idp.Dockerfile" "$ROOT/tests/idp/provider"
  run docker push "localhost:$REGISTRY_HOST_PORT/weir-e2e/policy-server:dev"
  run docker push "localhost:$REGISTRY_HOST_PORT/weir-e2e/idp:dev"
  # The grant-signing key never enters an image or the repository: made here, kept in a Secret.
  rm -f "$WORK/signing.pem"
  run docker run --rm -v "$WORK:/out" --user "$(id -u)" --entrypoint policy-server \
    "localhost:$REGISTRY_HOST_PORT/weir-e2e/policy-server:dev" --generate-key /out/signing.pem
  render_auth_secrets "$WORK"
  kc apply -f "$WORK/policy-server-key.yaml"
  kc apply -f "$HERE/k8s/auth.yaml"
  kc -n "$AUTH_NS" rollout status deployment/idp --timeout=180s
  kc -n "$AUTH_NS" rollout status deployment/policy-server --timeout=180s
  render_gateway_cert "$WORK"
  kc apply -f "$WORK/gateway-cert.yaml"
  kc apply -f "$HERE/k8s/gateway.yaml"
}

# A self-signed certificate for the gateway's HTTPS server, made per run.
render_gateway_cert() {
  local out="$1" host="istio-ingressgateway.$GATEWAY_NS.svc.cluster.local"
  render_run openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$host" \
    -addext "subjectAltName=DNS:$host" -keyout "$out/gateway.key" -out "$out/gateway.crt"
  render_out "$out/gateway-cert.yaml" kubectl create secret tls weir-e2e-gateway-cert \
    -n "$GATEWAY_NS" --cert="$out/gateway.crt" --key="$out/gateway.key" --dry-run=client -o yaml
}

# Kubernetes objects made from generated data, written as YAML by kubectl itself
# (--dry-run=client needs no cluster), so the static proof renders and validates them too.
render_auth_secrets() {
  local out="$1"
  # --render has no key (the docker run above was only printed): the Secret's shape is what
  # gets validated, so a stand-in file will do.
  if [ "${RENDER:-0}" = 1 ] && [ ! -f "$out/signing.pem" ]; then echo "render stand-in" >"$out/signing.pem"; fi
  render_out "$out/policy-server-key.yaml" kubectl create secret generic policy-server-key \
    -n "$AUTH_NS" --from-file=signing.pem="$out/signing.pem" --dry-run=client -o yaml
}

render_pull_secrets() {
  local out="$1"
  render_out "$out/pull-secret-good.yaml" kubectl create secret docker-registry private-registry-pull-secret \
    -n "$TEST_NS" --docker-server="$PRIVATE_REGISTRY" --docker-username="$PRIVATE_USER" \
    --docker-password="$PRIVATE_PASSWORD" --dry-run=client -o yaml
  render_out "$out/pull-secret-bad.yaml" kubectl create secret docker-registry wrong-password-pull-secret \
    -n "$TEST_NS" --docker-server="$PRIVATE_REGISTRY" --docker-username="$PRIVATE_USER" \
    --docker-password="not-the-password" --dry-run=client -o yaml
}

cluster_up() {
  start_registries
  create_cluster
  install_istio
  deploy_workloads
  deploy_auth_stack
}

# Deletes everything the suite created, then checks that nothing is left.
cluster_down() {
  if DRY_VALUE="$CLUSTER_NAME" capture kind get clusters | grep -qx "$CLUSTER_NAME"; then
    run kind delete cluster --name "$CLUSTER_NAME"
  fi
  local name
  for name in "$REGISTRY_NAME" "$PRIVATE_REGISTRY_NAME"; do
    if [ -n "$(DRY_VALUE=x capture docker ps -aq --filter "name=^$name\$")" ]; then
      run docker rm -f "$name"
    fi
  done
}

# The teardown case: no cluster, no registry container, no kube context left behind.
leftovers() {
  local left=""
  DRY_VALUE="" capture kind get clusters | grep -qx "$CLUSTER_NAME" && left+=" kind-cluster"
  [ -n "$(DRY_VALUE="" capture docker ps -aq --filter "name=^$REGISTRY_NAME")" ] && left+=" registry-containers"
  DRY_VALUE="" capture kubectl config get-contexts -o name | grep -qx "$KUBE_CONTEXT" && left+=" kube-context"
  printf '%s' "$left"
}
