#!/usr/bin/env python3
"""What the incident view (`--diagnose -A`) costs next to what a person runs to find broken releases.

On a running test bed (source RUNDIR/env first: it reads HSR_TESTBED_KUBECONFIG, HSR_HELM3,
HSR_HELM4, HSR_KUBECTL), for helm 3 and helm 4 in turn, RELEASES healthy releases of OBJECTS
objects each (the chart of bench/diagnose.py) at revision 2 in one namespace are looked at in
alternating pairs: `helm list -A` followed by `helm status` of every release it lists (native),
and `helm-safe-rollback --diagnose -A` (ours, the binary given, called directly with the helm
and kubectl of the bed), and ours with `--no-verify` (no drift check). Every pair is checked:
each side must see every release. Prints the medians and the ratios (the goal: at most 1.5x) as
a Markdown table.

    python3 bench/incident.py --binary target/release/helm-safe-rollback --pairs 5
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from diagnose import chart, run


def native(helm, env):
    """`helm list -A`, then `helm status` of each release it lists, one after another."""
    listed = json.loads(run([helm, "list", "-A", "-o", "json"], env).stdout)
    for release in listed:
        run([helm, "status", release["name"], "-n", release["namespace"]], env)
    return len(listed)


def ours(cmd, env):
    p = run(cmd, env, check=False)
    if p.returncode not in (0, 8):
        sys.exit(f"bench: failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    return len(json.loads(p.stdout)["releases"])


def timed(look, expected):
    start = time.monotonic()
    seen = look()
    elapsed = time.monotonic() - start
    if seen != expected:
        sys.exit(f"bench: saw {seen} releases, expected {expected}")
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--releases", type=int, default=50)
    ap.add_argument("--objects", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--helm", default="3,4")
    args = ap.parse_args()
    kubectl = os.environ["HSR_KUBECTL"]
    home = tempfile.mkdtemp(prefix="hsr-bench-incident.")
    env = dict(os.environ, KUBECONFIG=os.environ["HSR_TESTBED_KUBECONFIG"],
               HELM_CACHE_HOME=f"{home}/cache", HELM_CONFIG_HOME=f"{home}/config",
               HELM_DATA_HOME=f"{home}/data", XDG_STATE_HOME=f"{home}/state")
    chart(f"{home}/chart", args.objects)
    print("| helm | releases × objects | helm list -A + helm status each | --diagnose -A | ratio "
          "| --diagnose -A --no-verify | ratio |")
    print("|---|---|---|---|---|---|---|")
    for major in args.helm.split(","):
        helm = os.environ[f"HSR_HELM{major}"]
        ns = f"bench-incident-h{major}-{os.getpid()}"
        run([kubectl, "create", "namespace", ns], env)
        for i in range(args.releases):
            run([helm, "install", f"r{i}", f"{home}/chart", "-n", ns], env)
            run([helm, "upgrade", f"r{i}", f"{home}/chart", "-n", ns, "--set", "v=2"], env)
        expected = native(helm, env)
        if expected < args.releases:
            sys.exit(f"bench: helm lists {expected} releases, installed {args.releases}")
        mine = [args.binary, "--diagnose", "-A", "-o", "json", "--helm", helm, "--kubectl", kubectl]
        fast = mine + ["--no-verify"]
        ours(mine, env)  # warm helm's version cache, as any second run has it
        a, b, c = [], [], []
        for _ in range(args.pairs):
            a.append(timed(lambda: native(helm, env), expected))
            b.append(timed(lambda: ours(mine, env), expected))
            c.append(timed(lambda: ours(fast, env), expected))
        ratio = statistics.median(y / x for x, y in zip(a, b))
        fast_ratio = statistics.median(y / x for x, y in zip(a, c))
        print(f"| {major} | {args.releases} × {args.objects} | {statistics.median(a):.3f} s | "
              f"{statistics.median(b):.3f} s | {ratio:.2f}x | "
              f"{statistics.median(c):.3f} s | {fast_ratio:.2f}x |", flush=True)
        # Wait: helm 3 and 4 share the release storage, and the next major must list only its own.
        run([kubectl, "delete", "namespace", ns, "--wait=true", "--timeout=300s"], env)


if __name__ == "__main__":
    main()
