#!/usr/bin/env python3
"""What helm safe-rollback costs over native `helm rollback`, and how it grows.

On the real test bed (testbed/up.sh), for helm 3 and helm 4, for releases of 10, 100 and 500
objects (mostly ConfigMaps, some Services and Deployments), it times native `helm rollback`
against `helm-safe-rollback` in alternating A/B pairs on two identical releases (sizes 10, 100,
500 and 1000 by default):

  success   roll back to the previous revision (every ConfigMap changes), default settings
  bare      the same with every optional check off (--no-preflight --no-verify)
  failure   roll back to a revision with one object the API server rejects; ours with
            --no-preflight so that helm really runs and fails
  refused   the same with default settings: preflight refuses before helm runs

and reports medians, the ratio ours/native, the helm/kubectl processes we start (the native
rollback included), our own peak RSS, and where our time goes (capture, preflight, helm, verify,
journal; from the untimed --debug run). For each size it also times the floor: the helm/kubectl
processes the capture requires (kubectl config view, helm history, both revisions' manifests —
helm 4: with their apply method —, a kubectl proxy), run alone and at once, and compares the
bare path's overhead over native with it. `--quick` is a smoke test for CI (one small size, two pairs) that asserts nothing
about timings. Results go to stdout as a Markdown table.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env, check=True, **kw):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        sys.exit(f"bench: command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    return p


def write_chart(path, objects):
    """A chart of `objects` objects: 80% ConfigMaps, 10% Services, 10% Deployments."""
    os.makedirs(os.path.join(path, "templates"), exist_ok=True)
    with open(os.path.join(path, "Chart.yaml"), "w") as f:
        f.write("apiVersion: v2\nname: bench\nversion: 0.1.0\n")
    with open(os.path.join(path, "values.yaml"), "w") as f:
        f.write("v: '1'\nbad: false\n")
    services = max(1, objects // 10)
    deployments = max(1, objects // 10)
    configmaps = objects - services - deployments
    docs = []
    for i in range(configmaps):
        docs.append(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}-cm{i}\n"
            f"data:\n  v: {{{{ .Values.v | quote }}}}\n"
        )
    for i in range(services):
        docs.append(
            f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {{{{ .Release.Name }}}}-svc{i}\n"
            f"spec:\n  selector: {{app: bench{i}}}\n  ports: [{{port: 80, protocol: TCP}}]\n"
        )
    for i in range(deployments):
        ref = "{{ if and .Values.bad (eq %d 0) }}Bad_Name{{ else }}{{ .Release.Name }}-cm0{{ end }}" % i
        docs.append(
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{{{ .Release.Name }}}}-d{i}\n"
            f"spec:\n  replicas: 0\n  selector: {{matchLabels: {{app: bench{i}}}}}\n"
            f"  template:\n    metadata: {{labels: {{app: bench{i}}}}}\n    spec:\n      containers:\n"
            f"      - name: c\n        image: busybox\n        env:\n        - name: V\n"
            f"          value: {{{{ .Values.v | quote }}}}\n        - name: X\n          valueFrom:\n"
            f'            configMapKeyRef: {{name: "{ref}", key: v}}\n'
        )
    with open(os.path.join(path, "templates", "all.yaml"), "w") as f:
        f.write("\n---\n".join(docs))


def required_capture_alone(helm, major, kubectl, ns, rel, revision, env, work):
    """Seconds for the child processes our capture cannot do without, run by themselves: helm
    history and both revisions (helm 3: helm get manifest; helm 4: helm get all with the apply
    method, as ours reads them), the kubeconfig's cluster (kubectl config view, for the journal),
    with a kubectl proxy starting beside them, until the reads are done and the proxy has
    answered one request. No Rust, no parsing, no journal:
    the floor under our time before `helm rollback` starts, on this machine. The children get the
    Go settings ours get (GOGC=off, GOMEMLIMIT, unless already set), so the comparison is like for
    like."""
    if "GOGC" not in env and "GOMEMLIMIT" not in env:
        env = dict(env, GOGC="off", GOMEMLIMIT="256MiB")
    sock = os.path.join(work, f"floor-{os.getpid()}.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    start = time.perf_counter()
    get = ["get", "manifest", rel] if major == "3" else [
        "get", "all", rel, "--template", "{{.Release.ApplyMethod}}\n{{.Release.Manifest}}"]
    reads = [
        subprocess.Popen([kubectl, "config", "view", "--minify", "--output=json"], **quiet),
        subprocess.Popen([helm, "-n", ns, "history", rel, "-o", "json"], **quiet),
        subprocess.Popen([helm, "-n", ns, *get], **quiet),
        subprocess.Popen([helm, "-n", ns, *get, "--revision", revision], **quiet),
    ]
    proxy = subprocess.Popen([kubectl, "proxy", f"--unix-socket={sock}"], **quiet)
    try:
        for p in reads:
            if p.wait() != 0:
                sys.exit(f"bench: a helm read failed: {' '.join(p.args)}")
        deadline = start + 30
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(sock)
                    s.sendall(b"GET /version HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    if s.recv(16).split(b" ")[1:2] == [b"200"]:
                        break
            except OSError:
                pass
            if time.perf_counter() > deadline:
                sys.exit("bench: kubectl proxy did not answer within 30 s")
            time.sleep(0.001)
        return time.perf_counter() - start
    finally:
        proxy.kill()
        proxy.wait()


class Timer:
    """Runs a command, returns (seconds, completed process, our peak RSS in KiB or None)."""

    @staticmethod
    def run(cmd, env, track_rss=False):
        # Output goes to files, not pipes: a child writing more than a pipe holds (helm --debug on
        # 500 objects does) would block forever while we poll it instead of reading.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            start = time.perf_counter()
            p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
            peak = None
            if track_rss:
                status = f"/proc/{p.pid}/status"
                while p.poll() is None:
                    try:
                        with open(status) as f:
                            for line in f:
                                if line.startswith("VmHWM:"):
                                    peak = max(peak or 0, int(line.split()[1]))
                    except OSError:
                        pass
                    time.sleep(0.005)
            p.wait()
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            return seconds, subprocess.CompletedProcess(cmd, p.returncode, out.read(), err.read()), peak


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 10 objects, 2 pairs")
    ap.add_argument("--sizes", default="10,100,500,1000")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--helm", default="3,4")
    args = ap.parse_args()
    sizes = [10] if args.quick else [int(s) for s in args.sizes.split(",")]
    pairs = 2 if args.quick else args.pairs

    # Quick mode is a smoke test: the debug build the tests already made will do.
    profile = "debug" if args.quick else "release"
    build = ["cargo", "build", "--locked", "--quiet"] + ([] if args.quick else ["--release"])
    subprocess.run(build, cwd=REPO, check=True)
    ours = os.path.join(REPO, "target", profile, "helm-safe-rollback")
    work = tempfile.mkdtemp(prefix="hsr-bench.")
    rundir = os.environ.get("HSR_TESTBED_RUNDIR") or os.path.join(work, "bed")
    own_bed = "HSR_TESTBED_RUNDIR" not in os.environ
    try:
        if own_bed:
            up = subprocess.run([os.path.join(REPO, "testbed", "up.sh"), rundir], capture_output=True, text=True)
            if up.returncode != 0:
                sys.exit(f"bench: the test bed did not start:\n{up.stderr}")
        bed = {}
        with open(os.path.join(rundir, "env")) as f:
            for line in f:
                k, _, v = line.strip().removeprefix("export ").partition("=")
                bed[k] = v
        rows = []
        for major in args.helm.split(","):
            helm = bed[f"HSR_HELM{major}"]
            for size in sizes:
                rows.extend(measure(helm, major, size, pairs, ours, bed, work))
        print_table(rows, args.quick)
    finally:
        if own_bed:
            subprocess.run([os.path.join(REPO, "testbed", "down.sh"), rundir])
        shutil.rmtree(work, ignore_errors=True)


def measure(helm, major, size, pairs, ours, bed, work):
    ns = f"bench-h{major}-{size}-{os.getpid()}"
    home = os.path.join(work, ns)
    env = dict(os.environ)
    env.update(
        KUBECONFIG=bed["HSR_TESTBED_KUBECONFIG"],
        HELM_CACHE_HOME=os.path.join(home, "cache"),
        HELM_CONFIG_HOME=os.path.join(home, "config"),
        HELM_DATA_HOME=os.path.join(home, "data"),
        HELM_BIN=helm,
        KUBECTL=bed["HSR_KUBECTL"],
        HELM_SAFE_ROLLBACK_JOURNAL_DIR=os.path.join(home, "journal"),
    )
    env.pop("NO_COLOR", None)
    chart = os.path.join(home, "chart")
    write_chart(chart, size)
    run([bed["HSR_KUBECTL"], "create", "namespace", ns], env)
    # Two identical releases: A for native helm, B for us.
    for rel in ("a", "b"):
        run([helm, "-n", ns, "install", rel, chart, "--set", "v=1"], env)
        run([helm, "-n", ns, "upgrade", rel, chart, "--set", "v=2"], env)
        # Revision 3 fails (one Deployment the API server rejects); revision 4 is good again.
        run([helm, "-n", ns, "upgrade", rel, chart, "--set", "v=3", "--set", "bad=true"], env, check=False)
        run([helm, "-n", ns, "upgrade", rel, chart, "--set", "v=4"], env)

    # --history-max=0 keeps every revision, so the failed revision 3 stays reachable.
    native = lambda rel, *extra: [helm, "-n", ns, "rollback", rel, *extra, "--history-max=0"]
    safe = lambda rel, *extra: [ours, "-n", ns, rel, *extra, "--history-max=0"]
    cases = [
        # (path, ours' flags, target revision (None: alternate 1 and 2), native rc, ours rc)
        ("success", [], None, 0, 0),
        ("bare", ["--no-preflight", "--no-verify"], None, 0, 0),
        ("failure", ["--no-preflight"], "3", 1, 1),
        ("refused", [], "3", 1, 5),
    ]
    rows = []
    for path, flags, target, native_rc, ours_rc in cases:
        t_native, t_ours, rss = [], [], 0
        # The timed pairs, then one untimed census pair: ours with --debug (which also makes helm
        # log every object, so it is not timed) reports the processes it started. Then one more
        # untimed run of ours alone, without --debug, whose peak RSS we sample: the sampling
        # loop costs CPU, so it never runs beside a timed run.
        for i in range(pairs + 1):
            census = i == pairs
            # Good revisions 1 and 2 differ in every ConfigMap: alternating makes every rollback
            # change every ConfigMap.
            revision = [target or ("1" if i % 2 == 0 else "2")]
            order = [("native", "a"), ("ours", "b")] if i % 2 == 0 else [("ours", "b"), ("native", "a")]
            if census:
                order.append(("rss", "b"))
            for tool, rel in order:
                if tool == "native":
                    secs, p, _ = Timer.run(native(rel, *revision), env)
                    if p.returncode != native_rc:
                        sys.exit(f"bench: native {path} rc={p.returncode}\n{p.stderr}")
                    if not census:
                        t_native.append(secs)
                    continue
                if tool == "rss" and not target:
                    revision = ["2" if revision == ["1"] else "1"]
                elif tool == "rss":
                    run([helm, "-n", ns, "rollback", rel, "4", "--history-max=0"], env)
                extra = ["--debug"] if census and tool == "ours" else []
                secs, p, peak = Timer.run(safe(rel, *revision, *flags, *extra), env, track_rss=tool == "rss")
                if p.returncode != ours_rc:
                    sys.exit(f"bench: ours {path} rc={p.returncode}\n{p.stdout}{p.stderr}")
                if tool == "rss":
                    rss = peak or 0
                elif census:
                    m = re.search(r"safe-rollback: (\d+) helm/kubectl processes started", p.stderr)
                    processes = int(m.group(1)) if m else -1
                    stages = stages_of(p.stderr)
                else:
                    t_ours.append(secs)
            if path in ("failure", "refused"):
                # Keep both releases on a good, equal footing for the next pair.
                for rel in ("a", "b"):
                    run([helm, "-n", ns, "rollback", rel, "4", "--history-max=0"], env)
        med_n, med_o = statistics.median(t_native), statistics.median(t_ours)
        # Each pair's own ratio, then their median: robust to the bed slowing down or speeding up
        # between pairs.
        ratio = statistics.median(o / n for o, n in zip(t_ours, t_native))
        rows.append(
            dict(
                helm=major, size=size, path=path, native=med_n, ours=med_o,
                ratio=ratio, processes=processes, rss_mib=rss / 1024, stages=stages,
            )
        )
        print(f"bench: helm{major} {size:>3} {path:<8} native {med_n:.3f}s ours {med_o:.3f}s "
              f"x{ratio:.2f} children {processes} rss {rss / 1024:.1f} MiB",
              file=sys.stderr)
    floor = [required_capture_alone(helm, major, bed["HSR_KUBECTL"], ns, "b", "1", env, work)
             for _ in range(pairs)]
    bare = next(r for r in rows if r["path"] == "bare")
    bare.update(floor=statistics.median(floor))
    print(f"bench: helm{major} {size:>3} required capture alone {bare['floor']:.3f}s: "
          f"bare overhead {bare['ours'] - bare['native']:.3f}s", file=sys.stderr)
    run([bed["HSR_KUBECTL"], "delete", "namespace", ns, "--wait=false"], env)
    return rows


STAGE = re.compile(r"^safe-rollback: \[ *([\d.]+)s\] (.*) took ([\d.]+)s$", re.M)


def stages_of(debug):
    """Seconds per stage of one --debug run: capture (every read before the journal, the
    preflight's dry run beside them), preflight (its dry-run requests and decisions), helm (the
    native rollback), verify, journal (written before, completed after)."""
    stages = dict(capture=0.0, preflight=0.0, helm=0.0, verify=0.0, journal=0.0)
    for start, what, took in STAGE.findall(debug):
        start, took = float(start), float(took)
        if what.startswith("locking and journaling"):
            stages["capture"] = start
            stages["journal"] += took
        elif what.startswith("completing the journal"):
            stages["journal"] += took
        elif what.startswith("preflight decisions") or (
                "API request(s) (PATCH" in what and stages["capture"] == 0.0):
            stages["preflight"] += took
        elif re.match(r"helm\d? rollback ", what):
            stages["helm"] += took
        elif what.startswith("verifying the live objects"):
            stages["verify"] += took
    return stages


def print_table(rows, quick):
    print("| helm | objects | path | native median | ours median | ours/native | our child processes (rollback included) | our peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['helm']} | {r['size']} | {r['path']} | {r['native']:.3f} s | {r['ours']:.3f} s | "
              f"{r['ratio']:.2f}× | {r['processes']} | {r['rss_mib']:.1f} MiB |")
    print()
    print("Where the time goes: one untimed run with --debug per row (helm logs every object then, so")
    print("its helm stage is slower than in the timed runs). Capture includes the preflight's dry run,")
    print("which runs beside the other reads.")
    print()
    print("| helm | objects | path | capture | preflight | helm | verify | journal |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["stages"]
        print(f"| {r['helm']} | {r['size']} | {r['path']} | {s['capture']:.3f} s | {s['preflight']:.3f} s | "
              f"{s['helm']:.3f} s | {s['verify']:.3f} s | {s['journal']:.3f} s |")
    print()
    print("The floor: the helm/kubectl processes the capture requires (kubectl config view, helm")
    print("history, both revisions, a kubectl proxy answering once), run alone and at once, on this")
    print("machine; against it, the bare path's overhead over native (ours median − native median).")
    print()
    print("| helm | objects | required capture alone (median) | bare: native median | bare: ours median | overhead / floor |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "floor" in r:
            overhead = r["ours"] - r["native"]
            print(f"| {r['helm']} | {r['size']} | {r['floor']:.3f} s | {r['native']:.3f} s | "
                  f"{r['ours']:.3f} s | {overhead / r['floor']:.2f}× |")
    if quick:
        print("\n(quick mode: a smoke test, too few pairs for the numbers to mean much)")


if __name__ == "__main__":
    main()
