#!/usr/bin/env bash
# Records the seed scenario (tests/fixtures/real-helm/seed/steps.sh) with every helm of the
# version matrix into tests/fixtures/real-helm/seed/helm-<version>/, on a running bed:
#
#   source RUNDIR/env && testbed/record-seed-matrix.sh [VERSION…]
#
# Each version gets its own namespace (seed-<version with dashes>) through a kubeconfig of its
# own, so versions run side by side without seeing each other's objects. A version already
# recorded is kept (the 3.17.3 and 4.3.1 transcripts were recorded outside the matrix and name
# their releases seed-h3/seed-h4 in `default`; the unit tests in src/domain/classify.rs quote
# them);
# HSR_RECORD_FORCE=1 records again. Besides each step's stdout/stderr/rc, steps.log keeps the
# script's own output: the `live:` lines show whether the Service was left behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
MATRIX="${HSR_HELM_MATRIX:-$here/helm-matrix.tsv}"
CACHE="${HSR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-safe-rollback}/testbed"
: "${HSR_TESTBED_KUBECONFIG:?source the bed's env first (testbed/up.sh RUNDIR writes RUNDIR/env)}"
: "${HSR_KUBECTL:?source the bed's env first}"
say() { printf 'record: %s\n' "$*" >&2; }
"$here/provision-matrix.sh"

seed="$repo/tests/fixtures/real-helm/seed"
work=$(mktemp -d "${TMPDIR:-/tmp}/hsr-record.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" && ln -s "$HSR_KUBECTL" "$work/bin/kubectl"

record() { # version
  local version=$1 tag=${1//./-} out="$seed/helm-$1"
  if [ -d "$out" ] && [ "${HSR_RECORD_FORCE:-}" != 1 ]; then
    say "$version: kept (already recorded; HSR_RECORD_FORCE=1 to redo)"
    return 0
  fi
  local ns="seed-$tag" kc="$work/kubeconfig-$tag" run="$work/run-$tag"
  sed "s/namespace: default/namespace: $ns/" "$HSR_TESTBED_KUBECONFIG" >"$kc"
  chmod 600 "$kc" # helm 3 warns on every call about a group- or world-readable one
  grep -q "namespace: $ns" "$kc" || { say "FAILED: could not set the namespace in $kc"; return 1; }
  # An earlier recording's namespace may still be terminating.
  KUBECONFIG="$kc" "$HSR_KUBECTL" wait --for=delete "namespace/$ns" --timeout=120s >/dev/null 2>&1 || true
  KUBECONFIG="$kc" "$HSR_KUBECTL" create namespace "$ns" --dry-run=client -o yaml |
    KUBECONFIG="$kc" "$HSR_KUBECTL" apply -f - >/dev/null
  mkdir -p "$run"
  # steps.sh writes to $PWD/out/helm-TAG and names the release seed-TAG: dots are not allowed
  # in the Service name it derives, hence the dashes.
  (cd "$run" && PATH="$work/bin:$PATH" KUBECONFIG="$kc" HELM_CACHE_HOME="$run/cache" \
    HELM_CONFIG_HOME="$run/config" HELM_DATA_HOME="$run/data" \
    "$seed/steps.sh" "$CACHE/matrix/helm-$version" "$tag" >"$run/steps.log" 2>&1)
  rm -rf "$out" && mkdir -p "$out"
  cp "$run/out/helm-$tag"/* "$out/"
  cp "$run/steps.log" "$out/steps.log"
  KUBECONFIG="$kc" "$HSR_KUBECTL" delete namespace "$ns" --wait=false >/dev/null
  say "$version: recorded in ${out#"$repo"/}"
}

if [ $# -gt 0 ]; then versions=("$@"); else
  mapfile -t versions < <(grep -v '^#' "$MATRIX" | cut -f1 | grep .)
fi
for version in "${versions[@]}"; do record "$version"; done
