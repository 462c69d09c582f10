"""Compares examples/analytics/kpis.py's JSON with the KPI projection's (`daojia admin --json
kpis`, one file per breakdown), row by row and field by field.

Usage: compare_kpis.py SCRIPT_JSON HEAD_POSITION EXPECTED_POSTED BREAKDOWN=ADMIN_JSON...

HEAD_POSITION is the store's head when the projection was read: each projection answer must
be at exactly that position (else the log moved and the comparison would mean nothing).
EXPECTED_POSTED is the number of orders the simulation posted: the total must show them, so
that two empty tables cannot agree by accident. Exits 1 with every difference listed.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    script_path, head, expected_posted, *pairs = argv
    head, expected_posted = int(head), int(expected_posted)
    with open(script_path, encoding="utf-8") as f:
        script = json.load(f)["breakdowns"]
    problems: list[str] = []
    compared = 0
    for pair in pairs:
        breakdown, path = pair.split("=", 1)
        with open(path, encoding="utf-8") as f:
            projection = json.load(f)
        if projection["position"] != head:
            problems.append(
                f"{breakdown}: the projection answered at {projection['position']}, not {head}"
            )
        if projection["next_page_token"]:
            problems.append(f"{breakdown}: more rows than one page")
        ours = {row["key"]: row for row in script.get(breakdown, [])}
        theirs = {row["key"]: row for row in projection["rows"]}
        if list(ours) != list(theirs):
            problems.append(f"{breakdown}: keys differ: script {list(ours)}, projection {list(theirs)}")
        for key in sorted(set(ours) & set(theirs)):
            for name, value in theirs[key].items():
                compared += 1
                if ours[key].get(name) != value:
                    problems.append(
                        f"{breakdown} {key} {name}: script {ours[key].get(name)}, projection {value}"
                    )
    total = script.get("total", [{}])[0]
    if total.get("posted") != expected_posted:
        problems.append(f"total posted: script {total.get('posted')}, simulation {expected_posted}")
    for p in problems:
        print(f"compare_kpis: {p}", file=sys.stderr)
    if problems:
        return 1
    rows = sum(len(script.get(p.split("=", 1)[0], [])) for p in pairs)
    print(f"compare_kpis: {len(pairs)} breakdowns, {rows} rows, {compared} values agree")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
