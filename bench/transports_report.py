#!/usr/bin/env python3
"""Tables (and a plot) from bench/transports.sh's JSON lines: what each
transport costs a board (issue 14).

    python3 bench/transports_report.py target/bench/transports.jsonl > report.md
    python3 bench/transports_report.py --line '{"kind":"transports",...}'
    target/bench/venv/bin/python bench/transports_report.py --plot out.png results.jsonl

Every figure is the median over runs, with the range over runs in
brackets where they differ. The server's CPU per delivered message is net
of the publisher's: the CPU share of a server with no client at the same
rate (measured in each run) is subtracted before dividing. The table and
--line need the standard library only; --plot needs matplotlib.
"""

import json
import statistics
import sys
from collections import defaultdict

NAMES = {"ws": "WebSocket (boardcast.v1)", "sse": "Server-Sent Events", "poll": "long polling",
         "latest": "polling /latest"}
ORDER = ["ws", "sse", "poll", "latest"]


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]


def num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def vals(rows, key):
    return [r[key] for r in rows if num(r.get(key))]


def med(rows, key):
    v = vals(rows, key)
    return statistics.median(v) if v else None


def fmt(x, digits=None):
    if x is None:
        return "–"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:,.{digits}f}"


def cell(rows, key, digits=None, scale=1.0):
    v = [x * scale for x in vals(rows, key)]
    if not v:
        return "–"
    m = statistics.median(v)
    lo, hi = min(v), max(v)
    if len(v) > 1 and fmt(lo, digits) != fmt(hi, digits):
        return f"{fmt(m, digits)} ({fmt(lo, digits)}–{fmt(hi, digits)})"
    return fmt(m, digits)


def baselines(rows):
    """The publisher alone: server CPU share by (run, rate)."""
    out = {}
    for r in rows:
        if r.get("kind") == "transports" and r.get("clients") == 0 and num(r.get("server_cpu")):
            out[(r.get("run"), r.get("rate"))] = r["server_cpu"]
    return out


def add_net_cpu(rows):
    base = baselines(rows)
    by_rate = defaultdict(list)
    for (_, rate), share in base.items():
        by_rate[rate].append(share)
    for r in rows:
        if r.get("kind") != "transports" or not r.get("clients") or not r.get("deliveries"):
            continue
        share = base.get((r.get("run"), r.get("rate")))
        if share is None and by_rate.get(r.get("rate")):
            share = statistics.median(by_rate[r["rate"]])
        if share is None or not num(r.get("server_cpu_s")):
            continue
        net = max(r["server_cpu_s"] - share * r["window_s"], 0.0)
        r["net_cpu_us_per_delivery"] = net * 1e6 / r["deliveries"]
        r["net_server_cpu"] = net / r["window_s"]
        r["publisher_cpu"] = share


def groups(rows):
    g = defaultdict(list)
    for r in rows:
        if r.get("kind") == "transports" and r.get("clients") and "error" not in r:
            g[(r["transport"], r.get("rate"), r["clients"])].append(r)
    return g


def failures(r):
    """What went wrong in one measurement, in words."""
    parts = []
    expected = r["clients"]
    if r.get("received_any", expected) < expected:
        parts.append(f"{expected - r['received_any']} never got a message")
    if r.get("ended"):
        parts.append(f"{r['ended']} ended by the server")
    for status, n in sorted((r.get("statuses") or {}).items()):
        parts.append(f"{n}× {status}")
    for what, n in sorted((r.get("errors") or {}).items()):
        parts.append(f"{n}× {what}")
    if r.get("reopened"):
        parts.append(f"{r['reopened']:,} long-poll sessions cut (404) and opened again")
    nominal = r.get("rate") or 0
    if nominal and num(r.get("publish_rate")) and r["publish_rate"] < 0.9 * nominal:
        parts.append(f"the publisher (same process) slowed to {r['publish_rate']:,.0f} msg/s")
    if r.get("timeouts"):
        parts.append(f"{r['timeouts']} timed out")
    if r.get("lost"):
        parts.append(f"{r['lost']:,} lost (gaps)")
    if r.get("behind_at_end"):
        parts.append(f"{r['behind_at_end']:,} not received 1 s after the window")
    if r.get("starved"):
        parts.append(f"{r['starved']} starved")
    if (r.get("server_cpu") or 0) >= 0.95:
        parts.append(f"server CPU {r['server_cpu']:.2f}")
    if (r.get("client_cpu") or 0) >= 0.95:
        parts.append(f"generator CPU {r['client_cpu']:.2f}")
    return "; ".join(parts) or "nothing"


def expected_rate(r):
    """Deliveries/s if every client got every message published at the
    nominal rate (polling: one reading per poll)."""
    if r["transport"] == "latest":
        return r["clients"] / (r.get("interval_s") or 1.0)
    return r["clients"] * (r.get("rate") or r.get("publish_rate") or 0)


def table(rows):
    add_net_cpu(rows)
    g = groups(rows)
    meta = [r for r in rows if r.get("kind") == "meta"]
    out = []
    if meta:
        m = meta[0]
        out.append(f"Run {m.get('date')} at {m.get('git')}, {m.get('cpu')}, {m.get('cores')} cores, "
                   f"server on core {m.get('server_core')}, generator on core {m.get('client_core')}, "
                   f"load average at the start {' '.join(m.get('loadavg') or [])}.")
        out.append("")
    small = min((k[2] for k in g), default=None)
    out.append(f"### {small} clients, 60-byte JSON readings")
    out.append("")
    out.append("| transport | msg/s | bytes/message down (server → client) | bytes/message up | "
               "requests/message | latency p50 ms | latency p99 ms | staleness p50 / p99 ms | "
               "missed per answer | server CPU µs/message (net) | server CPU (net, of a core) | "
               "RSS KiB/client | threads/client | lost | runs |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for rate in sorted({k[1] for k in g}):
        for t in ORDER:
            rs = g.get((t, rate, small))
            if not rs:
                continue
            stale = "–"
            if t == "latest":
                stale = f"{cell(rs, 'staleness_p50_us', 1, 1e-3)} / {cell(rs, 'staleness_p99_us', 1, 1e-3)}"
            lost = sum(r.get("lost", 0) + r.get("behind_at_end", 0) for r in rs)
            out.append(
                f"| {NAMES[t]} | {rate:g} | {cell(rs, 'bytes_in_per_delivery', 0)} | "
                f"{cell(rs, 'bytes_out_per_delivery', 0)} | {cell(rs, 'requests_per_delivery', 3)} | "
                f"{cell(rs, 'p50_us', 2, 1e-3)} | {cell(rs, 'p99_us', 2, 1e-3)} | {stale} | "
                f"{cell(rs, 'missed_per_answer', 1)} | {cell(rs, 'net_cpu_us_per_delivery', 1)} | "
                f"{cell(rs, 'net_server_cpu', 3)} | {cell(rs, 'rss_per_client_kib', 1)} | "
                f"{cell(rs, 'threads_per_client', 2)} | {lost:,} | {len(rs)} |")
    out.append("")
    base = baselines(rows)
    if base:
        by_rate = defaultdict(list)
        for (_, rate), share in base.items():
            by_rate[rate].append(share)
        out.append("Publisher alone (no client), server CPU share subtracted above: " + ", ".join(
            f"{statistics.median(v):.3f} of a core at {rate:g} msg/s" for rate, v in sorted(by_rate.items())) + ".")
        out.append("")
    many = sorted({k[2] for k in g if small is not None and k[2] > small})
    for n in many:
        out.append(f"### {n} clients: what fails")
        out.append("")
        out.append("| transport | msg/s | deliveries/s (of expected) | latency p50 / p99 ms | "
                   "server CPU / generator CPU | server RSS MiB | server threads | what failed |")
        out.append("|---|---:|---:|---|---|---:|---:|---|")
        for rate in sorted({k[1] for k in g}):
            for t in ORDER:
                for r in g.get((t, rate, n), []):
                    exp = expected_rate(r)
                    share = f" ({r['deliveries_per_s'] / exp:.0%})" if exp else ""
                    lat = f"{fmt(r['p50_us'] / 1e3)} / {fmt(r['p99_us'] / 1e3)}"
                    if t == "latest" and num(r.get("staleness_p99_us")):
                        lat += f" (staleness p99 {fmt(r['staleness_p99_us'] / 1e3)})"
                    rss = r.get("server_rss_kib")
                    out.append(
                        f"| {NAMES[t]} | {rate:g} | {fmt(r['deliveries_per_s'])}{share} | {lat} | "
                        f"{fmt(r.get('server_cpu'))} / {fmt(r.get('client_cpu'))} | "
                        f"{fmt(rss / 1024 if rss else None, 1)} | {r.get('server_threads', '–')} | "
                        f"{failures(r)} |")
        out.append("")
    failed = [r for r in rows if "error" in r]
    if failed:
        out.append(f"{len(failed)} measurement(s) failed outright: " +
                   "; ".join(f"{r.get('args')}" for r in failed))
        out.append("")
    return "\n".join(out)


def line(r):
    if r.get("kind") != "transports":
        return json.dumps(r)
    if not r.get("clients"):
        return f"  publisher alone at {r.get('rate'):g} msg/s: server CPU {fmt(r.get('server_cpu'), 3)}"
    stale = ""
    if r["transport"] == "latest":
        stale = (f", staleness p50 {fmt(r['staleness_p50_us'] / 1e3)} ms, "
                 f"missed/answer {fmt(r.get('missed_per_answer'))}")
    return (f"  {r['transport']:6} {r['clients']:5} clients at {r.get('rate'):g}/s: "
            f"{fmt(r['deliveries_per_s'])} deliveries/s, p50 {fmt(r['p50_us'] / 1e3)} ms "
            f"p99 {fmt(r['p99_us'] / 1e3)} ms{stale}, bytes/msg down {fmt(r.get('bytes_in_per_delivery'))} "
            f"up {fmt(r.get('bytes_out_per_delivery'))}, server CPU {fmt(r.get('server_cpu'), 3)} "
            f"({fmt(r.get('cpu_us_per_delivery'))} µs/msg gross), RSS/client "
            f"{fmt(r.get('rss_per_client_kib'))} KiB, threads/client {fmt(r.get('threads_per_client'))}; "
            f"failures: {failures(r)}")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    add_net_cpu(rows)
    g = groups(rows)
    small = min((k[2] for k in g), default=None)
    rates = sorted({k[1] for k in g})
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    width = 0.8 / max(len(rates), 1)
    xs = range(len(ORDER))
    labels = [NAMES[t].replace(" (", "\n(") for t in ORDER]
    colors = ["#1f77b4", "#ff7f0e"]

    def bars(ax, key, title, ylabel, log=False, scale=1.0, up=None):
        for i, rate in enumerate(rates):
            heights, ups = [], []
            for t in ORDER:
                rs = g.get((t, rate, small), [])
                heights.append((med(rs, key) or 0) * scale)
                ups.append((med(rs, up) or 0) * scale if up else 0)
            pos = [x + (i - (len(rates) - 1) / 2) * width for x in xs]
            ax.bar(pos, heights, width, color=colors[i % 2], label=f"{rate:g} msg/s")
            if up:
                ax.bar(pos, ups, width, bottom=heights, color=colors[i % 2], alpha=0.45, hatch="//",
                       label=f"{rate:g} msg/s, up")
            for p, h, u in zip(pos, heights, ups):
                ax.annotate(f"{h + u:,.3g}", (p, h + u), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(xs), labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)

    bars(axes[0][0], "bytes_in_per_delivery", "Bytes on the wire per delivered message\n"
         "(down, and up hatched; HTTP heads and frame headers included)", "bytes",
         up="bytes_out_per_delivery")
    ax = axes[0][1]
    for i, rate in enumerate(rates):
        pos = [x + (i - (len(rates) - 1) / 2) * width for x in xs]
        p50 = [(med(g.get((t, rate, small), []), "staleness_p50_us" if t == "latest" else "p50_us") or 0) / 1e3
               for t in ORDER]
        p99 = [(med(g.get((t, rate, small), []), "staleness_p99_us" if t == "latest" else "p99_us") or 0) / 1e3
               for t in ORDER]
        ax.bar(pos, p99, width, color=colors[i % 2], alpha=0.45, label=f"{rate:g} msg/s p99")
        ax.bar(pos, p50, width, color=colors[i % 2], label=f"{rate:g} msg/s p50")
        for p, a, b in zip(pos, p50, p99):
            ax.annotate(f"{a:.3g}/{b:.3g}", (p, b), ha="center", va="bottom", fontsize=6)
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title("Latency p50 / p99 (polling: staleness of the newest\nreading when an answer arrives; "
                 "its value then ages up to 1 s)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    bars(axes[1][0], "net_cpu_us_per_delivery", "Server CPU per delivered message\n(net of the publisher alone)",
         "µs", log=True)
    bars(axes[1][1], "rss_per_client_kib", "Server RSS per client (threads per client in the labels)", "KiB")
    ax = axes[1][1]
    for t_i, t in enumerate(ORDER):
        th = med(g.get((t, rates[0], small), []), "threads_per_client") if rates else None
        if th is not None:
            ax.annotate(f"{th:.2g} thread{'s' if round(th) != 1 else ''}", (t_i, 0), xytext=(0, 4), textcoords="offset points",
                        ha="center", fontsize=7, color="white")
    fig.suptitle(f"boardcast's transports, {small} clients, 60-byte JSON readings (median of runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    if len(argv) >= 2 and argv[0] == "--line":
        print(line(json.loads(argv[1])))
    elif len(argv) >= 3 and argv[0] == "--plot":
        plot(load(argv[2]), argv[1])
    elif len(argv) == 1:
        print(table(load(argv[0])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
