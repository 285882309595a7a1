#!/usr/bin/env python3
"""Tables and targets from wsload's JSON lines (bench/run.sh writes them).

    python3 bench/report.py target/bench/full.jsonl > target/bench/report-full.md

Every figure is the median over runs. Ratios follow boardcast's figures:
"t" is boardcast / tungstenite, "r" boardcast / raw TCP (tungstenite's own
rows carry their ratio to raw TCP). A ratio is the median of the per-run
ratios: bench/run.sh measures the servers of one point back to back, so on
a shared machine whose speed drifts by the minute the pair sees the same
machine. For latencies and memory, lower is better, so a ratio under 1 is
boardcast ahead. Standard library only.
"""

import json
import statistics
import sys
from collections import defaultdict


def load(path):
    """The file's rows; each measurement is keyed by its run ("_run"), and
    a file that joins several full runs (a "meta" row starts each) keeps
    their runs apart."""
    rows = []
    starts = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                row = json.loads(line)
                starts += row.get("kind") == "meta"
                row["_run"] = (starts, row.get("run"))
                rows.append(row)
    return rows


def median_of(rows):
    """Median of every numeric field over runs; count of runs; errors."""
    out = {"runs": len(rows), "_rows": rows}
    keys = set().union(*(r.keys() for r in rows))
    for k in keys:
        vals = [r[k] for r in rows if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)]
        if vals:
            out[k] = statistics.median(vals)
            out[k + "_min"], out[k + "_max"] = min(vals), max(vals)
        bools = [r[k] for r in rows if isinstance(r.get(k), bool)]
        if bools:
            out[k + "_runs"] = f"{sum(bools)}/{len(bools)}"
        lists = [r[k] for r in rows if isinstance(r.get(k), list)]
        if lists and k not in out:
            out[k] = sorted({x for l in lists for x in l})
    return out


def group(rows, kind, *keys):
    groups = defaultdict(list)
    for r in rows:
        for k, v in (r.get("first_message") or {}).items():
            r["first_" + k] = v
        if r.get("kind") == kind and "error" not in r:
            groups[tuple(r.get(k) for k in keys)].append(r)
    return {k: median_of(v) for k, v in groups.items()}


def fmt(x, digits=None):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if digits is None:
        if float(x).is_integer():
            digits = 0
        else:
            digits = 0 if abs(x) >= 100 else (1 if abs(x) >= 10 else 2)
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def paired(m, peer, key):
    """The median over runs of m's figure divided by the peer's figure of
    the same run, and its range: (median, low, high), or None."""
    if not m or not peer:
        return None
    theirs = {r["_run"]: r.get(key) for r in peer["_rows"]}
    ratios = [ratio(r.get(key), theirs.get(r["_run"])) for r in m["_rows"]]
    ratios = [x for x in ratios if x is not None]
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)


def pratio(m, peer, key):
    p = paired(m, peer, key)
    return p and p[0]


def prange(p):
    """The range over runs of a paired ratio, where the runs differ."""
    return f" (runs: {p[1]:.2f}–{p[2]:.2f})" if p and p[1] != p[2] else ""


def with_ratios(value, t=None, r=None, digits=None):
    parts = []
    if t is not None:
        parts.append(f"{t:.2f}t")
    if r is not None:
        parts.append(f"{r:.2f}r")
    text = fmt(value, digits)
    return f"{text} ({', '.join(parts)})" if parts else text


def spread(m, key):
    """The range over runs, where there was more than one."""
    lo, hi = m.get(key + "_min"), m.get(key + "_max")
    if m.get("runs", 1) < 2 or lo is None:
        return ""
    return f" (runs: {fmt(lo)}–{fmt(hi)})"


def steal(m):
    """The median share of the machine's time stolen by the hypervisor
    during the windows, and the worst run's."""
    if m.get("steal") is None:
        return "–"
    return f"{m['steal']:.0%} (≤ {m['steal_max']:.0%})"


def stolen(m):
    return f"; steal {steal(m)}" if m.get("steal") is not None else ""


# A run the hypervisor stole less than this share of the machine from.
QUIET = 0.01


def quiet_p99(m):
    """The median p99 over the runs the hypervisor left alone, if some runs
    were not: what the server does when it has its core."""
    rows = [r for r in m["_rows"] if r.get("steal") is not None]
    quiet = [r["p99_us"] for r in rows if r["steal"] < QUIET]
    if not quiet or len(quiet) == len(rows):
        return ""
    return f"; in the {len(quiet)} of {len(rows)} runs with steal under {QUIET:.0%}: p99 {fmt(statistics.median(quiet))} µs"


def first(m):
    """The first-message delay, from the runs' medians."""
    return f"{fmt(m.get('first_p50_ms'))} / {fmt(m.get('first_max_ms'))}"


def size_label(n):
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


def main(path):
    rows = load(path)
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    failed = [r for r in rows if "error" in r]
    out = []
    p = out.append
    p(f"# boardcast benchmarks ({meta.get('mode', '?')} run)\n")
    p(f"- machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, Linux {meta.get('kernel', '?')}")
    p(f"- date: {meta.get('date', '?')}; commit {meta.get('git', '?')}; load average at start {' '.join(meta.get('loadavg', []))}")
    p(f"- servers pinned to core {meta.get('server_core')}, the generator to core {meta.get('client_core')} (`taskset`); scheduler group: {meta.get('autogroup', '?')}")
    p("- every figure: the median of the runs; `t` = ratio to tungstenite 0.30, `r` = ratio to raw TCP, each the median of the per-run ratios (the servers of a point are measured back to back)")
    if failed:
        p(f"- **{len(failed)} measurement(s) failed**: " + "; ".join(f"{r.get('server')} {r.get('kind')} {r.get('args', '')}" for r in failed))
    p("")

    # Echo.
    echo = group(rows, "echo", "server", "conns", "size")
    if echo:
        p("## Echo: lock-step round trips (one message in flight per connection)\n")
        p("| conns | size | server | round trips/s | MB/s | p50 µs | p99 µs | p99.9 µs | CPU server / generator | steal | runs |")
        p("|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|")
        points = sorted({(c, s) for (_, c, s) in echo})
        for conns, size in points:
            t = echo.get(("tungstenite", conns, size))
            raw = echo.get(("tcp", conns, size))
            for server in ("boardcast", "tungstenite", "tcp"):
                m = echo.get((server, conns, size))
                if not m:
                    continue
                cells = []
                for key, lower_better in (("rt_per_s", False), ("mb_per_s", False), ("p50_us", True), ("p99_us", True), ("p999_us", True)):
                    rt = pratio(m, t, key) if server == "boardcast" else None
                    rr = pratio(m, raw, key) if server != "tcp" else None
                    cells.append(with_ratios(m.get(key), rt, rr))
                name = {"tcp": "raw TCP"}.get(server, server)
                errors = f", {int(m['errors'])} errors" if m.get("errors") else ""
                p(f"| {conns} | {size_label(size)} | {name} | " + " | ".join(cells) +
                  f" | {fmt(m.get('server_cpu'), 2)} / {fmt(m.get('client_cpu'), 2)} | {steal(m)} | {m['runs']}{errors} |")
        p("")

    fan = group(rows, "fanout", "server", "note", "subs")
    maxed = {k: v for k, v in fan.items() if k[1] == "max"}
    if maxed:
        p("## Fan-out as fast as the hub accepts (`--rate 0 --size 16 --policy drop-oldest`)\n")
        p("| subscribers | server | deliveries/s | per subscriber /s: min / mean / max | within 2× of mean | starved (0/s) | first message after handshake: p50 / max ms | CPU server / generator | steal | runs |")
        p("|---:|---|---:|---|---|---:|---|---|---:|---:|")
        for subs in sorted({k[2] for k in maxed}):
            t = maxed.get(("tungstenite", "max", subs))
            for server in ("boardcast", "tungstenite"):
                m = maxed.get((server, "max", subs))
                if not m:
                    continue
                rt = pratio(m, t, "deliveries_per_s") if server == "boardcast" else None
                p(f"| {subs} | {server} | {with_ratios(m.get('deliveries_per_s'), rt)} | "
                  f"{fmt(m.get('sub_rate_min'))} / {fmt(m.get('sub_rate_mean'))} / {fmt(m.get('sub_rate_max'))} | "
                  f"{m.get('within_2x_runs', '–')} runs | {fmt(m.get('starved'))} | {first(m)} | {fmt(m.get('server_cpu'), 2)} / {fmt(m.get('client_cpu'), 2)} | {steal(m)} | {m['runs']} |")
        p("\nRaw TCP has no fan-out peer: ratios are to tungstenite only.\n")

    fixed = {k: v for k, v in fan.items() if k[1] == "fixed"}
    if fixed:
        p("## Fan-out at 1000 msg/s (`--rate 1000 --size 16`, policy disconnect)\n")
        p("| subscribers | server | p50 µs | p99 µs | max µs | lost (subscribers that kept up) | out of order | disconnected | subscribers with every message | deliveries/s | first message after handshake: p50 / max ms | CPU server / generator | steal | runs |")
        p("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
        for subs in sorted({k[2] for k in fixed}):
            t = fixed.get(("tungstenite", "fixed", subs))
            for server in ("boardcast", "tungstenite"):
                m = fixed.get((server, "fixed", subs))
                if not m:
                    continue
                r = lambda k: pratio(m, t, k) if server == "boardcast" else None
                reasons = ", ".join(m.get("disconnect_reasons") or [])
                p(f"| {subs} | {server} | {with_ratios(m.get('p50_us'), r('p50_us'))} | {with_ratios(m.get('p99_us'), r('p99_us'))} | "
                  f"{with_ratios(m.get('max_us'), r('max_us'))} | {fmt(m.get('lost'))} | {fmt(m.get('out_of_order'))} | "
                  f"{fmt(m.get('disconnected'))}{' (' + reasons + ')' if reasons else ''} | {fmt(m.get('complete'))} of {subs} | "
                  f"{with_ratios(m.get('deliveries_per_s'), r('deliveries_per_s'))} | {first(m)} | {fmt(m.get('server_cpu'), 2)} / {fmt(m.get('client_cpu'), 2)} | {steal(m)} | {m['runs']} |")
        p("")

    conns = group(rows, "conns", "server", "count")
    if conns:
        p("## Idle connections: handshakes/s and the server's cost per connection\n")
        p("RSS from `/proc/PID/status` (VmRSS) before and after, divided by the connections; "
          "the stack / heap split from `/proc/PID/smaps`. Ratios: `t` to the tungstenite server of the same shape, `r` to the raw TCP echo.\n")
        p("| connections | server | handshakes/s | RSS KiB/conn | of it stacks | of it heap | threads/conn | stack reserved KiB/thread | runs |")
        p("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        peer = {"boardcast-echo": "tungstenite-echo", "boardcast-broadcast": "tungstenite-broadcast"}
        order = ["boardcast-echo", "boardcast-broadcast", "tungstenite-echo", "tungstenite-broadcast", "tcp-echo"]
        for count in sorted({k[1] for k in conns}):
            raw = conns.get(("tcp-echo", count))
            for server in order:
                m = conns.get((server, count))
                if not m:
                    continue
                t = conns.get((peer.get(server), count))
                cells = []
                for key in ("handshakes_per_s", "rss_per_conn_kib", "stack_rss_per_conn_kib", "heap_rss_per_conn_kib", "threads_per_conn"):
                    cells.append(with_ratios(m.get(key), pratio(m, t, key),
                                             pratio(m, raw, key) if server != "tcp-echo" else None,
                                             None if key == "handshakes_per_s" else 1))
                p(f"| {count} | {server} | " + " | ".join(cells) + f" | {fmt(m.get('stack_reserved_kib'), 0)} | {m['runs']} |")
        p("")

    foot = next((r for r in rows if r.get("kind") == "footprint"), None)
    if foot:
        p("## Footprint\n")
        p("| what | boardcast | tungstenite | raw TCP |")
        p("|---|---:|---:|---:|")
        b = lambda n: f"{n:,} B ({n / 1000:.0f} KB)" if n else "–"
        p(f"| stripped `echo`, `--profile board` | {b(foot.get('echo_board_bytes'))} | {b(foot.get('tungstenite_echo_board_bytes'))} | {b(foot.get('tcp_echo_board_bytes'))} |")
        p(f"| `cargo tree -e normal` crates | {foot.get('dep_crates')} ({', '.join(foot.get('deps', []))}) | | |")
        p("")

    p("## Targets (issue 6)\n")
    p("| target | measured | |")
    p("|---|---|---|")
    mark = lambda ok: "met" if ok else "**missed**"
    if echo:
        worst = None
        misses = []
        for (server, c, s), m in sorted(echo.items()):
            if server != "boardcast":
                continue
            r = paired(m, echo.get(("tcp", c, s)), "rt_per_s")
            if r is None:
                continue
            worst = r if worst is None or r[0] < worst[0] else worst
            if r[0] < 0.9:
                misses.append(f"{c}×{size_label(s)} {r[0]:.2f}{prange(r)}")
        if worst is not None:
            detail = f"worst {worst[0]:.2f}× raw TCP{prange(worst)}" + (f"; below 0.9 at {', '.join(misses)}" if misses else "")
            p(f"| echo ≥ 0.9× raw TCP round trips/s at every grid point | {detail} | {mark(not misses)} |")
        at128 = []
        for (server, c, s), m in sorted(echo.items()):
            if server == "boardcast" and c == 128:
                r = paired(m, echo.get(("tungstenite", c, s)), "rt_per_s")
                if r is not None:
                    at128.append((s, r))
        if at128:
            p(f"| echo ≥ 1.3× tungstenite at 128 connections | " + ", ".join(f"{size_label(s)} {r[0]:.2f}×{prange(r)}" for s, r in at128) +
              f" | {mark(all(r[0] >= 1.3 for _, r in at128))} |")
    m = maxed.get(("boardcast", "max", 1000))
    if m:
        p(f"| fan-out to 1000, as fast as the hub accepts: ≥ 300k deliveries/s | {fmt(m.get('deliveries_per_s'))}/s | {mark(m.get('deliveries_per_s', 0) >= 300000)} |")
        ok = m.get("sub_rate_min", 0) >= m.get("sub_rate_mean", 0) / 2 and m.get("sub_rate_max", 0) <= 2 * m.get("sub_rate_mean", 0)
        p(f"| … every subscriber's rate within 2× of the mean | min {fmt(m.get('sub_rate_min'))} / mean {fmt(m.get('sub_rate_mean'))} / max {fmt(m.get('sub_rate_max'))} per s (within 2× in {m.get('within_2x_runs')} runs) | {mark(ok)} |")
    m = fixed.get(("boardcast", "fixed", 100))
    if m:
        p(f"| 1000 msg/s to 100 subscribers: p99 ≤ 1 ms | p99 {fmt(m.get('p99_us'))} µs{spread(m, 'p99_us')}{stolen(m)}{quiet_p99(m)} | {mark(m.get('p99_us', 1e9) <= 1000)} |")
    m = fixed.get(("boardcast", "fixed", 1000))
    if m:
        ok = m.get("lost", 1) == 0 and m.get("out_of_order", 1) == 0
        p(f"| 1000 msg/s to 1000 subscribers: every message to every subscriber that keeps up | lost {fmt(m.get('lost'))}, out of order {fmt(m.get('out_of_order'))}, disconnected {fmt(m.get('disconnected'))} of 1000 | {mark(ok and m.get('disconnected', 1) == 0)} |")
        p(f"| … p99 ≤ 10 ms | p99 {fmt(m.get('p99_us'))} µs{spread(m, 'p99_us')}{stolen(m)}{quiet_p99(m)} | {mark(m.get('p99_us', 1e9) <= 10000)} |")
    for server in ("boardcast-echo", "boardcast-broadcast"):
        vals = [(c, conns[(server, c)]["rss_per_conn_kib"]) for (s, c) in sorted(conns) if s == server]
        if vals:
            p(f"| ≤ 24 KiB RSS per idle connection: {server} | " + ", ".join(f"{c}: {v:.1f} KiB" for c, v in vals) +
              f" | {mark(all(v <= 24 for _, v in vals))} |")
    vals = [conns[(s, c)].get("stack_reserved_kib") for (s, c) in sorted(conns) if s == "boardcast-broadcast"]
    if vals:
        p(f"| ≤ 64 KiB stack reserved per thread by default (`Server`, default `Config`: boardcast-broadcast) | {fmt(max(vals), 0)} KiB | {mark(max(vals) <= 64)} |")
    vals = [conns[(s, c)].get("stack_reserved_kib") for (s, c) in sorted(conns) if s == "boardcast-echo"]
    if vals:
        p(f"| (not a target) `examples/echo` spawns its own threads with std's default stack | {fmt(max(vals), 0)} KiB reserved | – |")
    if foot:
        n = foot.get("echo_board_bytes")
        p(f"| stripped `examples/echo` ≤ 400 KB (`--profile board`) | {fmt(n)} B | {mark(n is not None and n <= 400_000)} |")
        p(f"| `cargo tree -e normal` of the library ≤ 6 crates | {foot.get('dep_crates')} | {mark(foot.get('dep_crates', 99) <= 6)} |")
    print("\n".join(out))


def line(text):
    """One measurement as one line, for the driver's progress output."""
    d = json.loads(text)
    k, name = d["kind"], d.get("server", "?")
    if k == "echo":
        print(f"  {name:12} echo   c={d['conns']:<4} s={d['size']:<6} {d['rt_per_s']:>10,.0f} rt/s  p99 {d['p99_us']:>9.1f} us"
              f"  cpu server {d['server_cpu']} generator {d['client_cpu']}  errors {d['errors']}")
    elif k == "fanout":
        print(f"  {name:12} fanout subs={d['subs']:<5} {d['deliveries_per_s']:>10,.0f} deliveries/s  p99 {d['p99_us']:>9.1f} us"
              f"  lost {d['lost']}  disconnected {d['disconnected']}  cpu server {d['server_cpu']} generator {d['client_cpu']}")
    elif k == "conns":
        print(f"  {name:22} conns n={d['count']:<5} {d['handshakes_per_s']:>8,.0f} handshakes/s  {d['rss_per_conn_kib']:>6.1f} KiB/conn"
              f"  {d['threads_per_conn']} threads/conn  stack {d['stack_reserved_kib']} KiB")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--line":
        line(sys.argv[2])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "target/bench/full.jsonl")
