#!/usr/bin/env python3
"""PNG plots from wsload's JSON lines: the medians that bench/report.py
tabulates.

    target/bench/venv/bin/python bench/plot.py target/bench/full.jsonl target/bench

bench/run.sh makes the venv (matplotlib from PyPI) and calls this. Writes
echo-throughput.png, fanout-latency.png, fanout-throughput.png and
conns-rss.png into the output directory.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import group, load, size_label  # noqa: E402

COLORS = {"boardcast": "#1f77b4", "tungstenite": "#ff7f0e", "tcp": "#2ca02c"}
NAMES = {"boardcast": "boardcast", "tungstenite": "tungstenite 0.30", "tcp": "raw TCP"}


def echo_throughput(rows, out):
    echo = group(rows, "echo", "server", "conns", "size")
    if not echo:
        return
    conns = sorted({k[1] for k in echo})
    fig, axes = plt.subplots(2, len(conns), figsize=(4.2 * len(conns), 7), squeeze=False)
    for col, c in enumerate(conns):
        for row, (key, label) in enumerate((("rt_per_s", "round trips/s"), ("mb_per_s", "MB/s (payload, one way)"))):
            ax = axes[row][col]
            for server in ("boardcast", "tungstenite", "tcp"):
                pts = sorted((k[2], v[key]) for k, v in echo.items() if k[0] == server and k[1] == c)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=COLORS[server], label=NAMES[server])
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            sizes = sorted({k[2] for k in echo})
            ax.set_xticks(sizes, [size_label(s) for s in sizes])
            ax.set_xlabel("message size")
            ax.set_ylabel(label)
            ax.set_title(f"{c} connection{'s' if c > 1 else ''}")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend()
    fig.suptitle("Echo, lock-step (one message in flight per connection), median of runs")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "echo-throughput.png"), dpi=110)
    plt.close(fig)


def fanout_latency(rows, out):
    fan = {k: v for k, v in group(rows, "fanout", "server", "note", "subs").items() if k[1] == "fixed"}
    if not fan:
        return
    subs = sorted({k[2] for k in fan})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"p50_us": ("o", ":"), "p99_us": ("s", "-"), "max_us": ("^", "--")}
    for server in ("boardcast", "tungstenite"):
        for key, (marker, line) in styles.items():
            pts = [(s, fan[(server, "fixed", s)][key] / 1000) for s in subs if (server, "fixed", s) in fan]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, linestyle=line,
                        color=COLORS[server], label=f"{NAMES[server]} {key[:-3]}")
    # A server that dropped subscribers as too slow measured the latency of
    # those it kept: say so beside the point.
    for (server, _, n), m in fan.items():
        gone = m.get("disconnected") or 0
        if gone:
            ax.annotate(f"{NAMES[server]}: {gone:.0f} of {n}\ndisconnected, latency\nof the rest",
                        (n, m["p50_us"] / 1000), textcoords="offset points", xytext=(-150, 12),
                        fontsize=7, color=COLORS[server])
    ax.plot([100], [1], "k*", markersize=12, label="target p99 at 100: 1 ms")
    ax.plot([1000], [10], "kX", markersize=10, label="target p99 at 1000: 10 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(subs, [str(s) for s in subs])
    ax.set_xlabel("subscribers")
    ax.set_ylabel("delivery latency, ms")
    ax.set_title("Fan-out at 1000 msg/s: delivery latency percentiles (median of runs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "fanout-latency.png"), dpi=110)
    plt.close(fig)


def fanout_throughput(rows, out):
    fan = {k: v for k, v in group(rows, "fanout", "server", "note", "subs").items() if k[1] == "max"}
    if not fan:
        return
    subs = sorted({k[2] for k in fan})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.38
    for i, server in enumerate(("boardcast", "tungstenite")):
        xs, ys, lo, hi = [], [], [], []
        for j, s in enumerate(subs):
            m = fan.get((server, "max", s))
            if m:
                xs.append(j + (i - 0.5) * width)
                ys.append(m["deliveries_per_s"])
                # The spread of per-subscriber rates, scaled to the total.
                lo.append(m["deliveries_per_s"] - m["sub_rate_min"] * s)
                hi.append(m["sub_rate_max"] * s - m["deliveries_per_s"])
        ax.bar(xs, ys, width, color=COLORS[server], label=NAMES[server], yerr=[lo, hi], capsize=4)
    ax.axhline(300_000, color="k", linestyle="--", linewidth=1, label="target at 1000: 300k/s")
    ax.set_xticks(range(len(subs)), [str(s) for s in subs])
    ax.set_xlabel("subscribers")
    ax.set_ylabel("deliveries/s, total")
    ax.set_title("Fan-out as fast as the hub accepts (error bars: slowest and fastest\nsubscriber's rate × subscribers)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "fanout-throughput.png"), dpi=110)
    plt.close(fig)


def conns_rss(rows, out):
    conns = group(rows, "conns", "server", "count")
    if not conns:
        return
    servers = ["boardcast-echo", "boardcast-broadcast", "tungstenite-echo", "tungstenite-broadcast", "tcp-echo"]
    counts = sorted({k[1] for k in conns})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(counts)
    for i, c in enumerate(counts):
        xs = [j + (i - (len(counts) - 1) / 2) * width for j in range(len(servers))]
        stacks = [conns.get((s, c), {}).get("stack_rss_per_conn_kib", 0) for s in servers]
        heap = [conns.get((s, c), {}).get("rss_per_conn_kib", 0) - st for s, st in zip(servers, stacks)]
        ax.bar(xs, stacks, width, color=f"C{i}", alpha=0.55, label=f"{c} connections: stacks")
        ax.bar(xs, heap, width, bottom=stacks, color=f"C{i}", label=f"{c} connections: the rest")
    ax.axhline(24, color="k", linestyle="--", linewidth=1, label="target: 24 KiB")
    ax.set_xticks(range(len(servers)), [s.replace("-", "\n") for s in servers])
    ax.set_ylabel("server RSS per idle connection, KiB")
    ax.set_title("Idle connections: server memory per connection (median of runs)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "conns-rss.png"), dpi=110)
    plt.close(fig)


def main(path, out):
    rows = load(path)
    os.makedirs(out, exist_ok=True)
    for plot in (echo_throughput, fanout_latency, fanout_throughput, conns_rss):
        plot(rows, out)
    print(f"plots written to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/bench/full.jsonl",
         sys.argv[2] if len(sys.argv) > 2 else "target/bench")
