# shellcheck shell=bash
# Plugin images and WasmPlugin manifests: every plugin pushed with `weir push` in both
# image formats, manifests written by `weir manifest`. Sourced by e2e.sh.

PLUGINS=(header-append acl-check check-header openid-connect)
FORMATS=(compat artifact)
declare -A DIGEST=()

# Manifest generation also runs in --render mode (the static proof validates its output);
# everything else is only printed there.
RENDER="${RENDER:-0}"

weir_bin() {
  printf '%s' "${WEIR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/weir}"
}

build_tools() {
  run cargo build -q --manifest-path "$ROOT/Cargo.toml" -p weir-cli --bin weir
  run "$ROOT/scripts/build-plugins.sh"
}

# What `weir push` takes for a plugin: the optimised .wasm from build-plugins.sh, or the
# crate (weir builds it) for a plugin that script does not list yet.
plugin_source() {
  local name="$1"
  if [ -f "$ROOT/target/plugins/$name.wasm" ]; then
    printf '%s' "$ROOT/target/plugins/$name.wasm"
  elif [ -f "$ROOT/plugins/$name/Cargo.toml" ] || [ -f "$ROOT/examples/$name/Cargo.toml" ]; then
    if [ -d "$ROOT/plugins/$name" ]; then printf '%s' "$ROOT/plugins/$name"; else printf '%s' "$ROOT/examples/$name"; fi
  else
    return 1
  fi
}

have_plugin() { [ -f "$ROOT/plugins/$1/Cargo.toml" ]; }

# Pushes one module; prints nothing, records the manifest digest `weir push` prints.
push_plugin() {
  local name="$1" format="$2" ref="$3"; shift 3
  local source digest
  source="$(plugin_source "$name")" || return 1
  digest="$(DRY_VALUE="sha256:$(printf '0%.0s' {1..64})" capture "$(weir_bin)" push -q \
    "$source" "oci://$ref" --format "$format" "$@")"
  DIGEST["$ref"]="$digest"
}

push_all() {
  local name format
  for name in "${PLUGINS[@]}"; do
    if ! have_plugin "$name"; then
      say "plugins/$name is absent: not pushed (its cases will fail and say so)"
      continue
    fi
    for format in "${FORMATS[@]}"; do
      push_plugin "$name" "$format" "localhost:$REGISTRY_HOST_PORT/weir/$name:$format" --insecure
    done
    # The seed chain pulls from the htpasswd registry, as the seed's imagePullSecret implies.
    printf '%s\n' "$PRIVATE_PASSWORD" >"$WORK/private-password"
    DRY_VALUE="sha256:$(printf '0%.0s' {1..64})" push_plugin_auth "$name" compat \
      "localhost:$PRIVATE_REGISTRY_HOST_PORT/weir/$name:compat"
  done
}

push_plugin_auth() {
  local name="$1" format="$2" ref="$3" source digest
  source="$(plugin_source "$name")" || return 1
  printf '+ %s < %s\n' "$(quote "$(weir_bin)" push -q "$source" "oci://$ref" --format "$format" \
    --insecure -u "$PRIVATE_USER" --password-stdin)" "$WORK/private-password" >&3
  if [ "$DRY_RUN" = 1 ]; then digest="$DRY_VALUE"; else
    digest="$("$(weir_bin)" push -q "$source" "oci://$ref" --format "$format" \
      --insecure -u "$PRIVATE_USER" --password-stdin <"$WORK/private-password")"
  fi
  DIGEST["$ref"]="$digest"
}

# The digest `weir push` printed for an image pushed through localhost:PORT, looked up by
# the name the cluster uses (same registry, same manifest, same digest).
digest_of() {
  local ref="$1"
  ref="${ref/#$REGISTRY/localhost:$REGISTRY_HOST_PORT}"
  ref="${ref/#$PRIVATE_REGISTRY/localhost:$PRIVATE_REGISTRY_HOST_PORT}"
  printf '%s' "${DIGEST[$ref]:-}"
}

# Sets SHA_ARGS to `--sha256 DIGEST` for an image this run pushed, or to nothing.
# shellcheck disable=SC2034 # read by the cases
sha_for() {
  local digest
  digest="$(digest_of "$1")"
  SHA_ARGS=()
  if [ -n "$digest" ]; then SHA_ARGS=(--sha256 "$digest"); fi
}

# `wasmplugin FILE ARGS…`: writes FILE with `weir manifest ARGS… -o FILE`.
wasmplugin() {
  local file="$1"; shift
  printf '+ %s\n' "$(quote "$(weir_bin)" manifest -q "$@" -o "$file")" >&3
  if [ "$DRY_RUN" = 1 ] && [ "$RENDER" != 1 ]; then return 0; fi
  # shellcheck disable=SC2034 # RENDER_FAILED is read by e2e.sh's summary
  "$(weir_bin)" manifest -q "$@" -o "$file" || { RENDER_FAILED=1; return 1; }
}

# Writes a pluginConfig file for `weir manifest --plugin-config`.
plugin_config() {
  local file="$1" text="$2"
  printf '%s\n' "$text" >"$file"
}
