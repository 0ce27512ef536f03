#!/usr/bin/env python3
"""The corpus table of bench/RESULTS.md, from the lines tests/e2e_corpus.rs appends to
HSR_CORPUS_REPORT (./scripts/test sets it to target/corpus-report.txt).

    python3 bench/corpus-table.py target/corpus-report.txt

One row per chart and helm, sorted; a line with an error after its `]` says so in the last
column, so a failed chart is never shown as a clean row; a `corpus` line it cannot read fails it
(exit 1), so a changed line format never empties the table unseen.
"""
import re
import sys

LINE = re.compile(
    r"^corpus (?P<chart>\S+)\s+(?P<helm>helm\d\S*) objects=\s*(?P<objects>\d+) "
    r"native=\s*(?P<native>[\d.]+s) ours=\s*(?P<ours>[\d.]+s) \((?P<ratio>[\d.]+x)\) "
    r"outcome=(?P<outcome>\S+) exit=(?P<exit>\S+) twin=(?P<twin>\S+) plan=(?P<plan>\S+)"
    r"(?: predicted=(?P<predicted>\S+))?"
    r"(?: failing=(?P<failing>\S+) failing_ours=(?P<failing_ours>\S+) created=(?P<created>\S+)"
    r" cleanup=(?P<cleanup>\S+) left=(?P<left>\S+))?"
    r" \[(?P<steps>[^\]]*)\](?P<rest>.*)$"
)


def rows(lines):
    out, unread = [], []
    for line in lines:
        m = LINE.match(line.strip())
        if not m:
            if line.startswith("corpus "):
                unread.append(line.strip())
            continue
        d = m.groupdict()
        failing = "—"
        if d["failing"]:
            failing = f"{d['failing']} ({d['failing_ours']})"
        problem = d["rest"].strip() or "none"
        out.append(
            (d["chart"], d["helm"], d["objects"], d["native"], d["ours"], d["ratio"],
             d["outcome"], d["twin"], d["plan"], d["predicted"] or "—", failing,
             d["created"] or "—",
             d["left"] or "—", problem[:120].replace("|", "\\|"))
        )
    return sorted(out), unread


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "target/corpus-report.txt"
    with open(path, encoding="utf-8") as f:
        table, unread = rows(f)
    print("| chart | helm | objects | native rollback | ours | ratio | outcome | twin | plan "
          "| predicted | failing rollback (ours) | created = leftovers "
          "| with --cleanup-on-fail: left | problems |")
    print("|" + "---|" * 14)
    for row in table:
        print("| " + " | ".join(row) + " |")
    for line in unread:
        print(f"corpus-table: cannot read this line: {line}", file=sys.stderr)
    return 1 if unread else 0


if __name__ == "__main__":
    sys.exit(main())
