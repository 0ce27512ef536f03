#!/usr/bin/env bash
# Starts a fresh test bed in RUNDIR: etcd, kube-apiserver and kube-controller-manager on free
# loopback ports, a token-authenticated admin kubeconfig, and RUNDIR/env for the tests:
#   HSR_TESTBED_KUBECONFIG HSR_TESTBED_SERVER HSR_TESTBED_TOKEN HSR_TESTBED_CA
#   HSR_HELM3 HSR_HELM4 HSR_KUBECTL HSR_TESTBED_RUNDIR HSR_HELM_MATRIX_DIR HSR_TESTBED_KUBE_VERSION
# HSR_TESTBED_K8S picks the Kubernetes (testbed/bed.sh): v1.37.2 by default, 1.20 for the old bed.
# Only the PIDs it starts are recorded (RUNDIR/pids); testbed/down.sh RUNDIR stops them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUNDIR=${1:?usage: testbed/up.sh RUNDIR}
mkdir -p "$RUNDIR" && RUNDIR=$(cd "$RUNDIR" && pwd)
step=provision
say() { printf 'testbed: %s\n' "$*" >&2; }
fail() { say "FAILED at step $step: $*"; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || say "FAILED at step $step (exit $rc); logs in $RUNDIR"' EXIT

"$here/provision.sh"
# The helm version matrix (tests/e2e_matrix.rs); instant once cached.
"$here/provision-matrix.sh"
# shellcheck source=testbed/bed.sh
. "$here/bed.sh"

# What differs between the releases: 1.20 still has the API server's insecure port and
# kube-controller-manager's --port (both closed here) and the controllers' old names, the cloud
# ones among them. A modern API server's endpoint reconciler refuses a loopback advertise address:
# none (the kubernetes Service is still created, its Endpoints are not kept).
if [ "$KUBE_LINE" = debian ]; then
  APISERVER_FLAGS="--insecure-port 0"
  KCM_FLAGS="--port=0"
  KCM_CONTROLLERS='*,-nodeipam,-nodelifecycle,-attachdetach,-persistentvolume-binder,-cloud-node-lifecycle,-route,-service'
else
  APISERVER_FLAGS="--endpoint-reconciler-type none"
  KCM_FLAGS=""
  KCM_CONTROLLERS='*,-node-ipam-controller,-node-lifecycle-controller,-persistentvolume-attach-detach-controller,-persistentvolume-binder-controller'
fi

step="pick free loopback ports"
# Beds started at once (the e2e suite starts private ones in parallel) must not be handed the
# same port between picking it and binding it: one bed at a time from here until its API server
# listens.
exec 9>"${TMPDIR:-/tmp}/hsr-testbed-ports.lock"
flock 9
read -r ETCD_CLIENT ETCD_PEER API_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)

step="keys and tokens"
mkdir -p "$RUNDIR/etcd" "$RUNDIR/certs"
openssl genrsa -out "$RUNDIR/sa.key" 2048 2>/dev/null
openssl rsa -in "$RUNDIR/sa.key" -pubout -out "$RUNDIR/sa.pub" 2>/dev/null
TOKEN=$(openssl rand -hex 24)
echo "$TOKEN,admin,admin,system:masters" >"$RUNDIR/tokens.csv"
: >"$RUNDIR/pids"

step="start etcd"
"$KUBE_BIN/etcd" --data-dir "$RUNDIR/etcd" --name testbed \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "testbed=http://127.0.0.1:$ETCD_PEER" \
  --unsafe-no-fsync --quota-backend-bytes=4294967296 >"$RUNDIR/etcd.log" 2>&1 9>&- &
echo $! >>"$RUNDIR/pids"

step="start kube-apiserver"
# A script of its own, so a test can kill the API server and start it again on the same port
# (testbed/apiserver.sh RUNDIR stop|start).
cat >"$RUNDIR/start-apiserver.sh" <<START
#!/usr/bin/env bash
exec "$KUBE_BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_CLIENT" \\
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" $APISERVER_FLAGS \\
  --cert-dir "$RUNDIR/certs" --token-auth-file "$RUNDIR/tokens.csv" --authorization-mode RBAC \\
  --service-account-issuer https://kubernetes.default.svc.cluster.local \\
  --service-account-key-file "$RUNDIR/sa.pub" --service-account-signing-key-file "$RUNDIR/sa.key" \\
  --service-cluster-ip-range 10.96.0.0/16 --disable-admission-plugins ServiceAccount \\
  --enable-priority-and-fairness=false >>"$RUNDIR/apiserver.log" 2>&1
START
chmod +x "$RUNDIR/start-apiserver.sh"
"$RUNDIR/start-apiserver.sh" 9>&- &
echo $! >>"$RUNDIR/pids"
echo $! >"$RUNDIR/apiserver.pid"

SERVER="https://127.0.0.1:$API_PORT"
step="write kubeconfig"
cat >"$RUNDIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: $SERVER
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: testbed
  context: {cluster: testbed, user: admin, namespace: default}
current-context: testbed
KC
chmod 600 "$RUNDIR/kubeconfig"

step="wait for kube-apiserver /readyz"
for _ in $(seq 1 240); do
  if "$BIN/kubectl" --kubeconfig "$RUNDIR/kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    break
  fi
  kill -0 "$(sed -n 2p "$RUNDIR/pids")" 2>/dev/null || { tail -n 20 "$RUNDIR/apiserver.log" >&2; fail "kube-apiserver exited"; }
  sleep 0.25
done
"$BIN/kubectl" --kubeconfig "$RUNDIR/kubeconfig" get --raw /readyz >/dev/null 2>&1 ||
  { tail -n 20 "$RUNDIR/apiserver.log" >&2; fail "kube-apiserver not ready after 60s"; }

exec 9>&-

step="start kube-controller-manager"
# shellcheck disable=SC2086 # KCM_FLAGS: zero or more flags
"$KUBE_BIN/kube-controller-manager" --kubeconfig "$RUNDIR/kubeconfig" --leader-elect=false $KCM_FLAGS --secure-port=0 \
  --service-account-private-key-file "$RUNDIR/sa.key" --use-service-account-credentials=false \
  --controllers="$KCM_CONTROLLERS" \
  >"$RUNDIR/controller-manager.log" 2>&1 &
echo $! >>"$RUNDIR/pids"

step="wait for the default ServiceAccount"
for _ in $(seq 1 240); do
  "$BIN/kubectl" --kubeconfig "$RUNDIR/kubeconfig" -n default get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.25
done
"$BIN/kubectl" --kubeconfig "$RUNDIR/kubeconfig" -n default get serviceaccount default >/dev/null 2>&1 ||
  { tail -n 20 "$RUNDIR/controller-manager.log" >&2; fail "no default ServiceAccount after 60s"; }

step="write env"
cat >"$RUNDIR/env" <<ENV
export HSR_TESTBED_RUNDIR=$RUNDIR
export HSR_TESTBED_KUBECONFIG=$RUNDIR/kubeconfig
export HSR_TESTBED_SERVER=$SERVER
export HSR_TESTBED_TOKEN=$TOKEN
export HSR_TESTBED_CA=
export HSR_HELM3=$BIN/helm3
export HSR_HELM4=$BIN/helm4
export HSR_KUBECTL=$BIN/kubectl
export HSR_HELM_MATRIX_DIR=$CACHE/matrix
export HSR_TESTBED_KUBE_VERSION=$KUBE_VERSION
ENV
say "up: $SERVER, Kubernetes $KUBE_VERSION (kubeconfig $RUNDIR/kubeconfig)"
