#!/usr/bin/env python3
"""Before / after table from bench/compare.sh's JSON lines.

    python3 bench/compare_report.py target/compare/compare.jsonl > target/compare/report.md

Every row is one measure of one point: the median over runs of the
"before" server and of the "after" one, each with its range over runs,
and the after/before ratio: the median of the per-run ratios (the two
sides of a point are measured back to back in every run, so each ratio
compares the two on the same machine), with their range. A point is
flagged when that ratio is worse than 5 %: a throughput under 0.95, a
latency or an RSS over 1.05. Standard library only.
"""

import os
import re
import statistics
import sys

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing report.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import fmt, load, size_label  # noqa: E402

TOLERANCE = 0.05
HIGHER, LOWER = "higher", "lower"
SIDES = ("before", "after")


def point_of(note):
    """(order, title, measures) of a point named by compare.sh's --note;
    measures are (key, label, better)."""
    m = re.fullmatch(r"echo-(\d+)x(\d+)", note)
    if m:
        c, s = int(m[1]), int(m[2])
        return ((0, c, s), f"echo, {c} conns × {size_label(s)}",
                [("rt_per_s", "round trips/s", HIGHER), ("p99_us", "p99 µs", LOWER)])
    m = re.fullmatch(r"fanout-rate0-(\d+)", note)
    if m:
        return ((1, int(m[1]), 0), f"fan-out to {m[1]}, rate 0 (drop-oldest)",
                [("deliveries_per_s", "deliveries/s", HIGHER)])
    m = re.fullmatch(r"fanout-rate1000-(\d+)", note)
    if m:
        return ((2, int(m[1]), 0), f"fan-out to {m[1]}, 1000 msg/s",
                [("p50_us", "p50 µs", LOWER), ("p99_us", "p99 µs", LOWER)])
    m = re.fullmatch(r"idle-(echo|broadcast)-(\d+)", note)
    if m:
        return ((3, int(m[2]), m[1] == "broadcast"), f"idle {m[1]}, {m[2]} conns",
                [("rss_per_conn_kib", "RSS KiB/conn", LOWER)])
    return ((9, 0, note), note, [])


def number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def values(rows, key):
    return [r[key] for r in rows if number(r.get(key))]


def with_range(vals, digits=None):
    if not vals:
        return "–"
    text = fmt(statistics.median(vals), digits)
    if len(vals) > 1 and min(vals) != max(vals):
        text += f" ({fmt(min(vals), digits)}–{fmt(max(vals), digits)})"
    return text


def digits_for(key):
    return 1 if key == "rss_per_conn_kib" else None


def cpu_shares(rows):
    """The median CPU shares of the server and of the generator over the
    windows: a server far from 1.0 on a point that should keep it busy
    means something else had its core."""
    def share(key):
        vals = values(rows, key)
        return f"{statistics.median(vals):.2f}" if vals else "–"
    return f"{share('server_cpu')} / {share('client_cpu')}"


def worse(r, better):
    return r < 1 - TOLERANCE if better == HIGHER else r > 1 + TOLERANCE


def anomalies(kind, rows):
    """What went wrong in a side's runs, beyond the figures: errors, lost or
    out-of-order messages, dropped subscribers, connections not kept."""
    out = []

    def count(label, pred_value):
        hits = [v for v in (pred_value(r) for r in rows) if v]
        if hits:
            out.append(f"{label} {fmt(max(hits))} (in {len(hits)} of {len(rows)} runs)")

    if kind == "echo":
        count("errors", lambda r: r.get("errors"))
    elif kind == "fanout":
        count("lost", lambda r: r.get("lost"))
        count("out of order", lambda r: r.get("out_of_order"))
        count("disconnected", lambda r: r.get("disconnected"))
        count("never received", lambda r: r.get("never_received"))
    elif kind == "conns":
        count("not kept open", lambda r: (r.get("count") or 0) - (r.get("open_at_end") or 0))
    return out


def main(path):
    rows = load(path)
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    failed = [r for r in rows if "error" in r]
    data = {}
    for r in rows:
        if r.get("kind") == "meta" or "error" in r or r.get("server") not in SIDES or not r.get("note"):
            continue
        data.setdefault(str(r["note"]), {}).setdefault(r["server"], []).append(r)

    out = []
    p = out.append
    b, a = meta.get("before", {}), meta.get("after", {})
    p(f"# boardcast before / after ({meta.get('mode', '?')}, {meta.get('runs', '?')} run{'' if meta.get('runs') == 1 else 's'})\n")
    for label, side in (("before", b), ("after", a)):
        same = ""
        if label == "after" and b.get("echo_sha256") and b.get("echo_sha256") == a.get("echo_sha256") \
                and b.get("broadcast_sha256") == a.get("broadcast_sha256"):
            same = " (**the same binaries as before**)"
        p(f"- {label}: `{side.get('rev', '?')}` = {side.get('commit', '?')} \"{side.get('subject', '')}\"{same}")
    p(f"- machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, Linux {meta.get('kernel', '?')}; "
      f"date {meta.get('date', '?')}; load average at start {' '.join(meta.get('loadavg', []))}")
    p(f"- servers pinned to core {meta.get('server_core')}, wsload (built at {meta.get('git', '?')}) to core "
      f"{meta.get('client_core')}; the two sides of a point back to back in every run, the first side alternating")
    p("- before / after: the median over runs (range over runs); after/before: the median of the per-run "
      "ratios (their range); ↑ higher is better, ↓ lower is better; "
      f"⚠ worse than {TOLERANCE:.0%}; CPU: the median share of a core the server and the generator "
      "had over the windows (echo at 16 and 128 connections keeps the server's near 1.00 on a quiet machine)")
    if failed:
        p(f"- **{len(failed)} measurement(s) failed**: " +
          "; ".join(f"{r.get('server')} {r.get('kind')} {r.get('args', '')}" for r in failed))
    p("")
    p("| point | measure | before | after | after/before | per-run ratios | CPU server / generator: before; after | steal: before / after | runs |")
    p("|---|---|---:|---:|---:|---:|---|---|---:|")

    flagged, noisy, notes = [], [], []
    for note in sorted(data, key=lambda n: point_of(n)[0]):
        _, title, measures = point_of(note)
        sides = data[note]
        before, after = sides.get("before", []), sides.get("after", [])
        steal = " / ".join(
            f"{statistics.median(values(s, 'steal')):.0%}" if values(s, "steal") else "–" for s in (before, after))
        cpu = "; ".join(cpu_shares(s) for s in (before, after))
        for i, (key, label, better) in enumerate(measures):
            theirs = {r["_run"]: r.get(key) for r in before}
            ratios = [r[key] / theirs[r["_run"]] for r in after
                      if number(r.get(key)) and number(theirs.get(r["_run"])) and theirs[r["_run"]] != 0]
            cells = [with_range(values(before, key), digits_for(key)), with_range(values(after, key), digits_for(key))]
            if ratios:
                med = statistics.median(ratios)
                bad = worse(med, better)
                cells.append(f"{'⚠ ' if bad else ''}{med:.3f}")
                cells.append(f"{min(ratios):.3f}–{max(ratios):.3f}" if len(ratios) > 1 else "–")
                if bad:
                    span = f" (runs {min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else ""
                    flagged.append(f"{title}: {label} {med:.3f}{span}")
                    if len(ratios) > 1 and min(ratios) <= 1 <= max(ratios):
                        noisy.append(f"{title}: {label}")
            else:
                cells += ["–", "–"]
            arrow = "↑" if better == HIGHER else "↓"
            p(f"| {title if i == 0 else ''} | {label} {arrow} | " + " | ".join(cells) +
              f" | {cpu if i == 0 else ''} | {steal if i == 0 else ''} | {len(before)} / {len(after)} |")
        kind = (before or after or [{}])[0].get("kind")
        for side, rs in (("before", before), ("after", after)):
            found = anomalies(kind, rs)
            if found:
                notes.append(f"{title}, {side}: " + ", ".join(found))
    p("")

    if flagged:
        p(f"**Worse than {TOLERANCE:.0%}** (throughput < {1 - TOLERANCE:.2f}, latency or RSS > {1 + TOLERANCE:.2f}) "
          f"at {len(flagged)} measure(s):\n")
        for f in flagged:
            p(f"- {f}")
        if noisy:
            p(f"\nOf these, the per-run ratios still reach 1.00 at: {'; '.join(noisy)}: "
              "not told apart from the run-to-run noise at this many runs.")
    elif any(data.values()):
        p(f"No point worse than {TOLERANCE:.0%} (throughput ≥ {1 - TOLERANCE:.2f}, latency and RSS ≤ {1 + TOLERANCE:.2f}).")
    else:
        p("No measurements.")
    if notes:
        p("\nBesides the figures:\n")
        for n in notes:
            p(f"- {n}")
    if meta.get("mode", "").endswith("smoke"):
        p("\n(Smoke run: tiny durations and counts, one run; the figures check the script, not the library.)")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/compare/compare.jsonl")
