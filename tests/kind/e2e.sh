#!/usr/bin/env bash
# Weir's end-to-end suite on a real cluster: kind + Istio + two local registries, the four
# plugins pushed with `weir push` and deployed with manifests from `weir manifest`.
#
#   tests/kind/e2e.sh [--dry-run] [--keep] [--render DIR] [COMMAND] [CASE…]
#
# COMMAND: all (default: prereqs, up, push, every case, down, teardown check) | prereqs |
#          up | push | test [CASE…] (on a cluster left by --keep) | down | list
# --dry-run   print every command instead of running it (needs none of the tools)
# --keep      leave the cluster and registries up after `all` (then: test, down)
# --render D  with --dry-run: still run `weir manifest` and `kubectl create --dry-run=client`,
#             writing every manifest the suite would apply into D (the static proof uses it)
#
# Exit: 0 every case passed · 1 a case (or bringing the cluster up) failed · 2 usage ·
#       77 skipped: a prerequisite is missing, nothing was run (E2E_KIND_SKIP_OK=1 makes it 0).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
# shellcheck source=lib/cluster.sh
. "$HERE/lib/cluster.sh"
# shellcheck source=lib/plugins.sh
. "$HERE/lib/plugins.sh"
# shellcheck source=lib/cases.sh
. "$HERE/lib/cases.sh"
# shellcheck source=lib/seed-chain.sh
. "$HERE/lib/seed-chain.sh"

# Command lines go to fd 3 so that $(capture …) does not swallow them.
exec 3>&1

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "$EXIT_USAGE"; }

KEEP=0
WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --keep) KEEP=1 ;;
    --render) [ $# -ge 2 ] || usage; RENDER=1; WORK="$2"; shift ;;
    -h|--help) usage ;;
    -*) echo "e2e.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
  shift
done
COMMAND="${1:-all}"
[ $# -gt 0 ] && shift
if [ "$RENDER" = 1 ] && [ "$DRY_RUN" != 1 ]; then echo "e2e.sh: --render needs --dry-run" >&2; usage; fi
if [ -z "$WORK" ]; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-e2e.XXXXXX")"
  # Generated files (htpasswd, keys, manifests) go with the run, unless the cluster stays.
  trap '[ "$KEEP" = 1 ] || rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"

prereqs_or_skip() {
  if check_prereqs; then return 0; fi
  if [ "$DRY_RUN" = 1 ]; then
    say "dry run: going on without the missing tools (nothing is executed)"
    return 0
  fi
  echo "SKIP  e2e-kind: the prerequisites above are missing; nothing was run (exit $EXIT_SKIP, see tests/kind/README.md)"
  if [ "${E2E_KIND_SKIP_OK:-0}" = 1 ]; then exit "$EXIT_PASS"; fi
  exit "$EXIT_SKIP"
}

bring_up() {
  say "bringing up kind cluster $CLUSTER_NAME with Istio $ISTIO_VERSION"
  (set -e; cluster_up)
}

build_and_push() {
  say "building weir and the plugins, pushing every plugin in both image formats"
  (set -e; build_tools) || return 1
  push_all
}

fn_of() { printf 'case_%s' "${1//-/_}"; }

run_cases() {
  local name
  if [ $# -eq 0 ]; then set -- "${CASES[@]}"; fi
  for name in "$@"; do
    if ! declare -F "$(fn_of "$name")" >/dev/null; then
      echo "e2e.sh: no case $name (e2e.sh list)" >&2
      exit "$EXIT_USAGE"
    fi
    run_case "$name" "$(fn_of "$name")"
  done
}

# shellcheck disable=SC2317 # called through run_case
teardown_leaves_nothing() {
  local left
  left="$(leftovers)"
  [ -z "$left" ] || because "left behind:$left"
}

summary() {
  if [ "$DRY_RUN" = 1 ]; then
    # A dry run judges no case, but a step that failed for real (bringing up, or a --render
    # step writing a manifest) fails it.
    if ((FAILED)) || [ "$RENDER_FAILED" = 1 ]; then
      echo "dry run: a step failed (output above)"
      exit "$EXIT_FAIL"
    fi
    echo "dry run: commands printed, nothing run"
    exit "$EXIT_PASS"
  fi
  if ((FAILED)); then echo "failed: ${FAILED_NAMES[*]}"; fi
  echo "e2e-kind: $PASSED passed, $FAILED failed"
  if ((FAILED)); then exit "$EXIT_FAIL"; fi
  exit "$EXIT_PASS"
}

case "$COMMAND" in
  list) printf '%s\n' "${CASES[@]}" teardown; exit 0 ;;
  prereqs) prereqs_or_skip; echo "all prerequisites found"; exit 0 ;;
  up) prereqs_or_skip; bring_up || exit "$EXIT_FAIL"; exit 0 ;;
  push) prereqs_or_skip; build_and_push || exit "$EXIT_FAIL"; exit 0 ;;
  test) prereqs_or_skip; build_and_push || exit "$EXIT_FAIL"; run_cases "$@"; summary ;;
  down) prereqs_or_skip; cluster_down; exit 0 ;;
  all)
    prereqs_or_skip
    if ! bring_up; then
      fail cluster-up "bringing the cluster up failed (output above); tearing down"
      [ "$KEEP" = 1 ] || cluster_down
      summary
    fi
    if build_and_push; then
      run_cases "$@"
    else
      fail push "building or pushing the plugins failed (output above)"
    fi
    if [ "$KEEP" = 1 ]; then
      say "--keep: cluster $CLUSTER_NAME and the registries stay up; tests/kind/e2e.sh down removes them"
    else
      cluster_down
      run_case teardown teardown_leaves_nothing
    fi
    summary
    ;;
  *) echo "e2e.sh: unknown command $COMMAND" >&2; usage ;;
esac
