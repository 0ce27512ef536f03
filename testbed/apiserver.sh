#!/usr/bin/env bash
# Stops or restarts the kube-apiserver of a bed started by testbed/up.sh RUNDIR (same port, same
# etcd, same credentials), for tests of what happens when the API server goes away.
#   testbed/apiserver.sh RUNDIR stop|start
set -euo pipefail
RUNDIR=${1:?usage: testbed/apiserver.sh RUNDIR stop|start}
case "${2:?usage: testbed/apiserver.sh RUNDIR stop|start}" in
stop)
  pid=$(cat "$RUNDIR/apiserver.pid")
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  ;;
start)
  "$RUNDIR/start-apiserver.sh" &
  echo $! >>"$RUNDIR/pids"
  echo $! >"$RUNDIR/apiserver.pid"
  kubectl=$(sed -n 's/^export HSR_KUBECTL=//p' "$RUNDIR/env")
  for _ in $(seq 1 240); do
    "$kubectl" --kubeconfig "$RUNDIR/kubeconfig" get --raw /readyz >/dev/null 2>&1 && exit 0
    sleep 0.25
  done
  echo "testbed: FAILED at step restart kube-apiserver: not ready after 60s" >&2
  exit 1
  ;;
*) echo "usage: testbed/apiserver.sh RUNDIR stop|start" >&2; exit 2 ;;
esac
