#!/usr/bin/env python3
"""What `helm safe-rollback --diagnose` costs next to what a person runs to look at a release.

On a running test bed (source RUNDIR/env first: it reads HSR_TESTBED_KUBECONFIG, HSR_HELM3,
HSR_HELM4, HSR_KUBECTL), for helm 3 and helm 4, a healthy release of N objects (90% ConfigMaps,
5% Services, 5% Deployments) at revision 2 is looked at in alternating pairs: `helm status`
followed by `helm history` (native), and `helm-safe-rollback REL --diagnose` (ours, the binary
given, called directly with the helm and kubectl of the bed), and ours with `--no-verify` (no
drift check). Prints the medians and the ratios (the goal: under 1.5x) as a Markdown
table.

    python3 bench/diagnose.py --binary target/release/helm-safe-rollback --objects 100 --pairs 7
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd, env, check=True):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        sys.exit(f"bench: failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    return p


def chart(dir, objects):
    os.makedirs(f"{dir}/templates", exist_ok=True)
    with open(f"{dir}/Chart.yaml", "w") as f:
        f.write("apiVersion: v2\nname: bench\nversion: 0.1.0\n")
    services = deployments = max(1, objects // 20)
    configmaps = objects - services - deployments
    with open(f"{dir}/templates/all.yaml", "w") as f:
        f.write(f"""{{{{- range $i := until {configmaps} }}}}
apiVersion: v1
kind: ConfigMap
metadata: {{name: "{{{{ $.Release.Name }}}}-cm-{{{{ $i }}}}"}}
data: {{k: "{{{{ $.Values.v }}}}"}}
---
{{{{- end }}}}
{{{{- range $i := until {services} }}}}
apiVersion: v1
kind: Service
metadata: {{name: "{{{{ $.Release.Name }}}}-svc-{{{{ $i }}}}"}}
spec: {{selector: {{app: "a{{{{ $i }}}}"}}, ports: [{{port: 80, protocol: TCP}}]}}
---
{{{{- end }}}}
{{{{- range $i := until {deployments} }}}}
apiVersion: apps/v1
kind: Deployment
metadata: {{name: "{{{{ $.Release.Name }}}}-dep-{{{{ $i }}}}"}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: "a{{{{ $i }}}}"}}}}
  template:
    metadata: {{labels: {{app: "a{{{{ $i }}}}"}}}}
    spec: {{containers: [{{name: c, image: "nginx:{{{{ $.Values.v }}}}"}}]}}
---
{{{{- end }}}}
""")
    with open(f"{dir}/values.yaml", "w") as f:
        f.write("v: '1'\n")


def timed(cmds, env):
    start = time.monotonic()
    for cmd in cmds:
        p = run(cmd, env, check=False)
        if p.returncode not in (0, 8):
            sys.exit(f"bench: failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    return time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--objects", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=7)
    args = ap.parse_args()
    kubectl = os.environ["HSR_KUBECTL"]
    home = tempfile.mkdtemp(prefix="hsr-bench-diagnose.")
    env = dict(os.environ, KUBECONFIG=os.environ["HSR_TESTBED_KUBECONFIG"],
               HELM_CACHE_HOME=f"{home}/cache", HELM_CONFIG_HOME=f"{home}/config",
               HELM_DATA_HOME=f"{home}/data", XDG_STATE_HOME=f"{home}/state")
    chart(f"{home}/chart", args.objects)
    print("| helm | objects | helm status + helm history | --diagnose | ratio | --diagnose --no-verify | ratio |")
    print("|---|---|---|---|---|---|---|")
    for major in ("3", "4"):
        helm = os.environ[f"HSR_HELM{major}"]
        ns = f"bench-diagnose-h{major}-{os.getpid()}"
        run([kubectl, "create", "namespace", ns], env)
        run([helm, "install", "b", f"{home}/chart", "-n", ns], env)
        run([helm, "upgrade", "b", f"{home}/chart", "-n", ns, "--set", "v=2"], env)
        native = [[helm, "status", "b", "-n", ns], [helm, "history", "b", "-n", ns]]
        ours = [[args.binary, "b", "--diagnose", "-n", ns, "--helm", helm, "--kubectl", kubectl]]
        fast = [ours[0] + ["--no-verify"]]
        timed(ours, env)  # warm helm's version cache, as any second run has it
        a, b, c = [], [], []
        for _ in range(args.pairs):
            a.append(timed(native, env))
            b.append(timed(ours, env))
            c.append(timed(fast, env))
        ratio = statistics.median(y / x for x, y in zip(a, b))
        fast_ratio = statistics.median(y / x for x, y in zip(a, c))
        print(f"| {major} | {args.objects} | {statistics.median(a):.3f} s | "
              f"{statistics.median(b):.3f} s | {ratio:.2f}x | "
              f"{statistics.median(c):.3f} s | {fast_ratio:.2f}x |")
        run([kubectl, "delete", "namespace", ns, "--wait=false"], env)


if __name__ == "__main__":
    main()
