#!/usr/bin/env bash
# Stops the bed started by testbed/up.sh RUNDIR: only the PIDs it recorded, TERM then KILL.
set -uo pipefail
RUNDIR=${1:?usage: testbed/down.sh RUNDIR}
[ -f "$RUNDIR/pids" ] || exit 0
pids=$(tac "$RUNDIR/pids")
for pid in $pids; do kill -TERM "$pid" 2>/dev/null; done
for _ in $(seq 1 40); do
  alive=""
  for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
  [ -z "$alive" ] && break
  sleep 0.25
done
for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
rm -f "$RUNDIR/pids"
exit 0
