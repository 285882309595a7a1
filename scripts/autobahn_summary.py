#!/usr/bin/env python3
"""Summarise an Autobahn-format report directory (as written by kosoku) and
judge it against boardcast's conformance target.

Usage: autobahn_summary.py REPORT_DIR [-i CASE]... [-x CASE]... [other kosoku args ignored]

The -i/-x patterns are the ones the run was made with; they tell which cases
must be present in the report (a selected case with no result counts as
MISSING, i.e. a failure). That check needs kosoku importable (it is, when this
runs under the kosoku venv's python); without it only the cases present are
judged.

Target (exit status 1 if it is not met):
  * sections 1-11: behavior OK or INFORMATIONAL, and behaviorClose OK or
    INFORMATIONAL -- so any FAILED, NON-STRICT, ERROR, UNIMPLEMENTED, ...
    fails the run;
  * sections 12-13 (permessage-deflate): UNIMPLEMENTED, OK, NON-STRICT or
    INFORMATIONAL; a case that did run (not UNIMPLEMENTED) must also close
    OK or INFORMATIONAL.
  * every selected case has a result; any value not listed above fails.

Writes the markdown counts table to REPORT_DIR/summary.md as well.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
from collections import Counter, defaultdict

# Column order of the counts table; other values found get extra columns.
RESULTS = ["OK", "NON-STRICT", "FAILED", "INFORMATIONAL", "UNIMPLEMENTED"]
MISSING = "MISSING"

CATEGORIES = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved Bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 Handling",
    "7": "Close Handling",
    "8": "Misc",
    "9": "Limits/Performance",
    "10": "Misc",
    "11": "",
    "12": "Compression (payloads)",
    "13": "Compression (parameters)",
}

# Failures shown with details, then as one line each, then as a list of ids.
DETAILED = 30
BRIEF = 70

STRICT_OK = {"OK", "INFORMATIONAL"}
COMPRESSION_OK = {"OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"}


def sort_key(case_id: str) -> list[int]:
    try:
        return [int(p) for p in case_id.split(".")]
    except ValueError:
        return [1 << 30]


def section_of(case_id: str) -> str:
    return case_id.split(".")[0]


def is_compression(case_id: str) -> bool:
    return section_of(case_id) in ("12", "13")


# Set by autobahn.sh for a server built with permessage-deflate: sections
# 12-13 then meet the same target as 1-11 (UNIMPLEMENTED fails).
REQUIRE_COMPRESSION = os.environ.get("AUTOBAHN_REQUIRE_COMPRESSION") == "1"
TARGET = ("sections 1-13: OK/INFORMATIONAL only" if REQUIRE_COMPRESSION
          else "sections 1-11: OK/INFORMATIONAL only; 12-13: UNIMPLEMENTED also allowed")


def verdict(case_id: str, behavior: str | None, close: str | None) -> str | None:
    """Return None if the case meets the target, else a short reason."""
    if behavior is None:
        return "no result (missing from report)"
    if is_compression(case_id) and not REQUIRE_COMPRESSION:
        if behavior not in COMPRESSION_OK:
            return f"behavior {behavior}"
        if behavior != "UNIMPLEMENTED" and close not in STRICT_OK:
            return f"behaviorClose {close}"
        return None
    if behavior not in STRICT_OK:
        return f"behavior {behavior}"
    if close not in STRICT_OK:
        return f"behaviorClose {close}"
    return None


def pattern_matches(pattern: str, case_id: str) -> bool:
    """kosoku's selection rule: an id without `*` is exact; with `*` it is a
    regex anchored at the start only (so `9.*` and `*.1.1` match prefixes),
    as in upstream Autobahn."""
    if "*" not in pattern:
        return pattern == case_id
    regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.match(regex, case_id) is not None


def expected_cases(include: list[str] | None, exclude: list[str] | None) -> list[str] | None:
    try:
        from kosoku.cases import CASES  # type: ignore[import-not-found]
    except Exception as exc:  # pragma: no cover - depends on the environment
        print(f"note: cannot import kosoku ({exc}); not checking for missing cases", file=sys.stderr)
        return None
    ids = list(CASES)
    if include:
        ids = [c for c in ids if any(pattern_matches(p, c) for p in include)]
    if exclude:
        ids = [c for c in ids if not any(pattern_matches(p, c) for p in exclude)]
    return ids


def plain(text: str | None, limit: int = 160) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", text or ""))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_case_report(outdir: str, entry: dict) -> dict:
    try:
        with open(os.path.join(outdir, entry["reportfile"])) as f:
            return json.load(f)
    except Exception:
        return {}


def markdown_table(counts: dict[str, Counter], columns: list[str]) -> list[str]:
    header = ["Section"] + columns + ["Total"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    totals: Counter = Counter()
    for section in sorted(counts, key=lambda s: sort_key(s)):
        row = counts[section]
        totals.update(row)
        name = f"{section} {CATEGORIES.get(section, '')}".strip()
        cells = [str(row[c]) if row[c] else "" for c in columns]
        lines.append("| " + " | ".join([name] + cells + [str(sum(row.values()))]) + " |")
    cells = [f"**{totals[c]}**" if totals[c] else "" for c in columns]
    lines.append("| " + " | ".join(["**Total**"] + cells + [f"**{sum(totals.values())}**"]) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir")
    parser.add_argument("-i", "--include", action="append")
    parser.add_argument("-x", "--exclude", action="append")
    args, _ignored = parser.parse_known_args()

    index_path = os.path.join(args.outdir, "index.json")
    try:
        with open(index_path) as f:
            index = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"FAIL: no usable report at {index_path}: {exc}")
        return 1

    if not index:
        print(f"FAIL: {index_path} holds no results")
        return 1
    if len(index) > 1:
        print(f"note: several agents in the report ({', '.join(sorted(index))}); judging all of them together")

    # One run gives each case once; the agent (the Server header) can still
    # change mid-run, e.g. to host:port for cases that could not connect.
    all_ids = [c for cases in index.values() for c in cases]
    unique = len(all_ids) == len(set(all_ids))
    results: dict[str, dict] = {}
    for agent, cases in sorted(index.items()):
        for case_id, entry in cases.items():
            key = case_id if unique else f"{case_id}@{agent}"
            results[key] = dict(entry, _id=case_id, _agent=agent)

    expected = expected_cases(args.include, args.exclude)
    present_ids = {e["_id"] for e in results.values()}
    missing = [c for c in (expected or []) if c not in present_ids]

    counts: dict[str, Counter] = defaultdict(Counter)
    close_counts: Counter = Counter()
    extra_cols: list[str] = []
    bad: list[tuple[str, dict | None, str]] = []
    notable: list[tuple[str, dict]] = []  # non-OK but acceptable

    for key in sorted(results, key=lambda k: sort_key(results[k]["_id"])):
        entry = results[key]
        case_id = entry["_id"]
        behavior = entry.get("behavior")
        close = entry.get("behaviorClose")
        label = behavior if isinstance(behavior, str) and behavior else "UNKNOWN"
        counts[section_of(case_id)][label] += 1
        if label not in RESULTS and label not in extra_cols:
            extra_cols.append(label)
        close_counts[close or "UNKNOWN"] += 1
        reason = verdict(case_id, behavior or None, close or None)
        if reason:
            bad.append((key, entry, reason))
        elif behavior != "OK" or close != "OK":
            notable.append((key, entry))

    for case_id in missing:
        counts[section_of(case_id)][MISSING] += 1
        bad.append((case_id, None, "no result (missing from report)"))
    if missing:
        extra_cols.append(MISSING)

    columns = RESULTS + extra_cols
    agents = ", ".join(sorted(index))
    table = markdown_table(counts, columns)

    print(f"Autobahn|Testsuite results (kosoku fuzzingclient) for agent: {agents}")
    print()
    for line in table:
        print(line)
    print()
    print("behaviorClose: " + ", ".join(f"{k} {v}" for k, v in sorted(close_counts.items(), key=lambda kv: -kv[1])))

    durations = sorted(results.values(), key=lambda e: -(e.get("duration") or 0))[:5]
    if durations:
        print("slowest cases: " + ", ".join(f"{e['_id']} {e.get('duration')} ms" for e in durations))

    try:
        with open(os.path.join(args.outdir, "summary.md"), "w") as f:
            f.write("\n".join(table) + "\n")
    except OSError as exc:
        print(f"note: could not write summary.md: {exc}")

    # Non-OK cases: the acceptable ones briefly, the failures in detail.
    unimpl = [k for k, e in notable if e.get("behavior") == "UNIMPLEMENTED"]
    shown = [(k, e) for k, e in notable if e.get("behavior") != "UNIMPLEMENTED"]
    if unimpl:
        print(f"\n{len(unimpl)} compression case(s) UNIMPLEMENTED (permessage-deflate not negotiated): allowed")
    if shown:
        print(f"\nNon-OK but acceptable ({len(shown)}):")
        for key, e in shown:
            print(f"  ok    {key:<9} behavior={e.get('behavior')} behaviorClose={e.get('behaviorClose')} "
                  f"remoteCloseCode={e.get('remoteCloseCode')}")

    if bad:
        print(f"\nCases that miss the target ({len(bad)}):")
        for n, (key, e, reason) in enumerate(bad):
            if n >= DETAILED + BRIEF:
                rest = [k for k, _, _ in bad[n:]]
                print(f"  ... and {len(rest)} more: {' '.join(rest)}")
                break
            if e is None:
                print(f"  FAIL  {key:<9} MISSING: selected but no result in the report")
                continue
            rep = load_case_report(args.outdir, e) if n < DETAILED else {}
            print(f"  FAIL  {key:<9} behavior={e.get('behavior')} behaviorClose={e.get('behaviorClose')} "
                  f"remoteCloseCode={e.get('remoteCloseCode')} duration={e.get('duration')}ms  [{reason}]")
            if n >= DETAILED:
                continue
            if rep:
                for label, field in (("case", "description"), ("expect", "expectation"), ("result", "result")):
                    if rep.get(field):
                        print(f"        {label + ':':<8} {plain(rep.get(field))}")
                want = rep.get("expected") or {}
                if want:
                    print(f"        got:     {plain(json.dumps(rep.get('received')), 200)}")
                    print(f"        OK if:   {plain(json.dumps(want.get('OK')), 200)}")
                ec = rep.get("expectedClose") or {}
                if ec:
                        print(f"        close:   {plain(rep.get('resultClose'))} (want closedByMe={ec.get('closedByMe')} "
                          f"codes={ec.get('closeCode')} requireClean={ec.get('requireClean')}; "
                          f"got closedByMe={rep.get('closedByMe')} droppedByMe={rep.get('droppedByMe')} "
                          f"wasClean={rep.get('wasClean')} code={rep.get('remoteCloseCode')} "
                          f"reason={plain(rep.get('remoteCloseReason'), 60)!r})")
                if rep.get("wasNotCleanReason"):
                    print(f"        unclean: {plain(rep.get('wasNotCleanReason'))}")
            print(f"        report:  {os.path.join(args.outdir, e.get('reportfile', '?')).removesuffix('.json')}.html")
        print(f"\nFAIL: {len(bad)} case(s) miss the target ({TARGET})")
        return 1

    total = sum(sum(c.values()) for c in counts.values())
    print(f"\nPASS: all {total} case(s) meet the target ({TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
