#!/usr/bin/env python3
"""Sorts every YAML document under the given roots for the static proof.

    manifests.py OUT ROOT...

Each *.yaml / *.yml file must parse. Each document is then:
- a WasmPlugin: copied byte for byte to OUT/wasmplugin/ for `weir manifest validate`;
- a Kubernetes built-in object: copied to OUT/builtin/ for kubernetes-validate --strict;
- a known non-built-in resource (kind's Cluster, IstioOperator, Istio networking/security
  resources): checked here for the fields the suite depends on, since no schema for them
  is available offline;
- anything without apiVersion and kind (Envoy bootstraps, plugin configs): parsed only.
A document with an apiVersion/kind in none of these groups fails: nothing goes unchecked
silently. Exit 1 on any failure, with one line per problem.
"""
import os
import sys

import yaml

SKIP_DIRS = {"node_modules", "target", ".git"}
# API groups whose objects are Kubernetes built-ins (schemas shipped by kubernetes-validate).
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "rbac.authorization.k8s.io", "networking.k8s.io",
                  "autoscaling", "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io"}


def group_of(api_version):
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def require(doc, path, problems, where):
    node = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            problems.append(f"{where}: missing {'.'.join(path)}")
            return None
        node = node[key]
    return node


def check_known(doc, where, problems):
    """Fields the suite relies on in resources without an offline schema; None if unknown."""
    api, kind = doc["apiVersion"], doc["kind"]
    if (api, kind) == ("kind.x-k8s.io/v1alpha4", "Cluster"):
        patches = require(doc, ["containerdConfigPatches"], problems, where) or []
        if not any("config_path" in p and "/etc/containerd/certs.d" in p for p in patches):
            problems.append(f"{where}: containerd must read /etc/containerd/certs.d (config_path)")
        return True
    if (api, kind) == ("install.istio.io/v1alpha1", "IstioOperator"):
        meta = require(doc, ["spec", "meshConfig", "defaultConfig", "proxyMetadata"], problems, where)
        if meta is not None and not str(meta.get("WASM_INSECURE_REGISTRIES", "")).strip():
            problems.append(f"{where}: proxyMetadata.WASM_INSECURE_REGISTRIES is empty")
        for gw in require(doc, ["spec", "components", "ingressGateways"], problems, where) or []:
            if not gw.get("name") or not gw.get("namespace"):
                problems.append(f"{where}: every ingress gateway needs name and namespace")
        return True
    if (api, kind) == ("networking.istio.io/v1", "Gateway"):
        require(doc, ["spec", "selector"], problems, where)
        for server in require(doc, ["spec", "servers"], problems, where) or []:
            if not {"port", "hosts"} <= set(server):
                problems.append(f"{where}: every server needs port and hosts")
        return True
    if (api, kind) == ("networking.istio.io/v1", "VirtualService"):
        require(doc, ["spec", "hosts"], problems, where)
        for route in require(doc, ["spec", "http"], problems, where) or []:
            for dest in route.get("route", []):
                require(dest, ["destination", "host"], problems, where)
        return True
    if (api, kind) == ("security.istio.io/v1", "RequestAuthentication"):
        for rule in require(doc, ["spec", "jwtRules"], problems, where) or []:
            if not rule.get("issuer") or not (rule.get("jwksUri") or rule.get("jwks")):
                problems.append(f"{where}: every jwtRule needs issuer and jwksUri or jwks")
        return True
    return None


def sort_file(path, out, counts, problems):
    text = open(path, encoding="utf-8").read()
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as err:
        problems.append(f"{path}: not YAML: {err}".replace("\n", " "))
        return
    for index, node in enumerate(nodes):
        if node is None:
            continue
        where = f"{path}#{index}"
        doc = yaml.safe_load(text[node.start_mark.index:node.end_mark.index])
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            counts["parsed"] += 1
            continue
        raw = text[node.start_mark.index:node.end_mark.index]
        name = f"{counts['total']:03d}-" + os.path.basename(path).replace(".", "_") + f"-{index}.yaml"
        counts["total"] += 1
        if doc["kind"] == "WasmPlugin" and group_of(doc["apiVersion"]) == "extensions.istio.io":
            dest = "wasmplugin"
        elif group_of(doc["apiVersion"]) in BUILTIN_GROUPS:
            dest = "builtin"
        elif check_known(doc, where, problems):
            counts["structural"] += 1
            continue
        else:
            problems.append(f"{where}: {doc['apiVersion']} {doc['kind']} has no check; add one to {sys.argv[0]}")
            continue
        counts[dest] += 1
        with open(os.path.join(out, dest, name), "w", encoding="utf-8") as f:
            f.write(f"# from {where}\n{raw}\n")


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: manifests.py OUT ROOT...")
    out = sys.argv[1]
    for sub in ("wasmplugin", "builtin"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    counts = {"total": 0, "parsed": 0, "structural": 0, "wasmplugin": 0, "builtin": 0}
    problems = []
    files = 0
    for root in sys.argv[2:]:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for filename in sorted(filenames):
                if filename.endswith((".yaml", ".yml")):
                    files += 1
                    sort_file(os.path.join(dirpath, filename), out, counts, problems)
    for problem in problems:
        print(f"error: {problem}")
    print(f"{files} YAML files: {counts['wasmplugin']} WasmPlugin, {counts['builtin']} built-in, "
          f"{counts['structural']} other resources checked here, {counts['parsed']} plain documents parsed")
    sys.exit(1 if problems or files == 0 else 0)


if __name__ == "__main__":
    main()
