# shellcheck shell=bash disable=SC2034 # sourced: its variables are the callers'
# Sourced by testbed/provision.sh and testbed/up.sh: which Kubernetes the bed runs and where its
# binaries are cached.
#
#   HSR_TESTBED_K8S=v1.37.2 (default)  any k8s.io/kubernetes release the Go module proxy serves,
#                                      built with the etcd release its go.mod requires
#   HSR_TESTBED_K8S=1.20               kube-apiserver v1.20.2 built from Debian source, Debian's etcd 3.4
#
# Sets CACHE, BIN (helm3, helm4, kubectl: the same for every bed), KUBE_VERSION, KUBE_LINE
# (debian or proxy) and KUBE_BIN (its etcd, kube-apiserver and kube-controller-manager).
CACHE="${HSR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-safe-rollback}/testbed"
BIN="$CACHE/bin"
HSR_TESTBED_K8S=${HSR_TESTBED_K8S:-v1.37.2}
case "$HSR_TESTBED_K8S" in
1.20 | v1.20 | 1.20.2 | v1.20.2)
  KUBE_VERSION=v1.20.2 KUBE_LINE=debian KUBE_BIN="$BIN"
  ;;
v1.[0-9]*.[0-9]* | 1.[0-9]*.[0-9]*)
  KUBE_VERSION="v${HSR_TESTBED_K8S#v}" KUBE_LINE=proxy
  KUBE_BIN="$CACHE/k8s-$KUBE_VERSION/bin"
  ;;
*)
  printf 'testbed: HSR_TESTBED_K8S=%s: expected 1.20 or a release such as v1.37.2\n' "$HSR_TESTBED_K8S" >&2
  exit 2
  ;;
esac
