#!/usr/bin/env python3
"""The differential table of bench/RESULTS.md, from the lines tests/e2e_differential.rs appends
to HSR_DIFFERENTIAL_REPORT (./scripts/test sets it to target/differential-report.txt).

    python3 bench/differential-table.py target/differential-report.txt

One row per chart, one column per case; a cell lists each helm variant that ran the case with
`ok` or `FAIL`, `n/a` with its reason below the table when the chart has no such case, and `·`
when this run's rotation did not pick it. A failed combination is never shown as a clean cell.
"""
import re
import sys

CASES = ["annotations", "labels", "env", "replicas", "toggle-on", "toggle-off", "hand-edit"]
RAN = re.compile(r"^differential (?P<chart>\S+)\s+(?P<variant>helm\S+) (?P<case>\S+) (?P<verdict>ok|FAIL) (?P<rest>.*)$")
NOT_APPLICABLE = re.compile(r"^differential (?P<chart>\S+)\s+- (?P<case>\S+) n/a: (?P<why>.*)$")


def main(path):
    cells, reasons, failures = {}, [], []
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        print(f"no differential report at {path}: the differential suite did not run")
        return 0
    for line in lines:
        if m := RAN.match(line):
            key = (m["chart"], m["case"])
            cells.setdefault(key, []).append(f"{m['variant']} {m['verdict']}")
            if m["verdict"] == "FAIL":
                failures.append(line)
        elif m := NOT_APPLICABLE.match(line):
            cells[(m["chart"], m["case"])] = ["n/a"]
            reasons.append(f"- {m['chart']} {m['case']}: {m['why']}")
    charts = sorted({chart for chart, _ in cells})
    print("| chart | " + " | ".join(CASES) + " |")
    print("|---" * (len(CASES) + 1) + "|")
    for chart in charts:
        row = [", ".join(cells.get((chart, case), ["·"])) for case in CASES]
        print(f"| {chart} | " + " | ".join(row) + " |")
    ran = sum(len(v) for v in cells.values() if v != ["n/a"])
    print(f"\n{ran} combination(s) ran, {len(failures)} failed; `·`: not picked by this run's rotation")
    if reasons:
        print("\nNot applicable:")
        print("\n".join(reasons))
    for failure in failures:
        print(failure)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
