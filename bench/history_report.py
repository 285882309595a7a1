#!/usr/bin/env python3
"""Tables from bench/history.sh's JSON lines: the cost of the hub's
history (issue 13).

    python3 bench/history_report.py target/bench/history.jsonl > target/bench/report-history.md

Every figure is the median over runs, with the range over runs where they
differ; an on/off ratio is the median of the per-run ratios (history.sh
measures on and off back to back in each run). Standard library only.
"""

import json
import statistics
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]


def num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def med(rows, key):
    vals = [r[key] for r in rows if num(r.get(key))]
    return statistics.median(vals) if vals else None


def rng(rows, key):
    vals = [r[key] for r in rows if num(r.get(key))]
    return (min(vals), max(vals)) if vals else (None, None)


def fmt(x, digits=None):
    if x is None:
        return "–"
    if digits is None:
        if float(x).is_integer():
            digits = 0
        else:
            digits = 0 if abs(x) >= 100 else (1 if abs(x) >= 10 else 2)
    return f"{x:,.{digits}f}"


def cell(rows, key, digits=None):
    """The median, and the range over runs where they differ."""
    m = med(rows, key)
    lo, hi = rng(rows, key)
    if m is None:
        return "–"
    if len(rows) > 1 and lo != hi:
        return f"{fmt(m, digits)} ({fmt(lo, digits)}–{fmt(hi, digits)})"
    return fmt(m, digits)


def derive(r):
    """Per-message costs of a fan-out row."""
    rate = r.get("publish_rate")
    cpu = r.get("server_cpu")
    if num(rate) and rate > 0 and num(cpu):
        r["cpu_us_per_message"] = cpu / rate * 1e6
    if num(r.get("deliveries_per_s")) and r["deliveries_per_s"] > 0 and num(cpu):
        r["cpu_ns_per_delivery"] = cpu / r["deliveries_per_s"] * 1e9
    if num(r.get("server_rss_kib")):
        r["server_rss_mib"] = r["server_rss_kib"] / 1024
    return r


def paired(on, off, key):
    """Median over runs of on/off for `key`, and its range."""
    theirs = {r.get("run"): r.get(key) for r in off}
    ratios = [r[key] / theirs[r.get("run")] for r in on
              if num(r.get(key)) and num(theirs.get(r.get("run"))) and theirs[r.get("run")]]
    if not ratios:
        return "–"
    m = statistics.median(ratios)
    lo, hi = min(ratios), max(ratios)
    return f"{m:.2f}" + (f" ({lo:.2f}–{hi:.2f})" if len(ratios) > 1 and lo != hi else "")


def main(path):
    rows = load(path)
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    failed = [r for r in rows if "error" in r]
    out = []
    p = out.append
    p(f"# The cost of history and resume ({meta.get('mode', '?')})\n")
    p(f"- machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, Linux {meta.get('kernel', '?')}")
    p(f"- date: {meta.get('date', '?')}; commit {meta.get('git', '?')}; load average at start {' '.join(meta.get('loadavg', []))}; scheduler group: {meta.get('autogroup', '?')}")
    p(f"- servers on core {meta.get('server_core')}, the generator on core {meta.get('client_core')}; figures: median of the runs (range over runs)")
    if failed:
        p(f"- **{len(failed)} measurement(s) failed**: " + "; ".join(f"{r.get('server', '')} {r.get('kind')} {r.get('args', '')}" for r in failed))
    p("")

    fan = defaultdict(list)
    for r in rows:
        if r.get("kind") == "fanout" and "error" not in r:
            fan[(r.get("note"), r.get("server"))].append(derive(r))
    if fan:
        p("## Fan-out, history on vs off\n")
        p("`examples/broadcast --size 16`, history on: the hub's default retention; off: `Retention::none()` for the topic. "
          "CPU per message: the server's CPU time over the window divided by the messages published in it; per delivery: divided by the deliveries. "
          "RSS: the server's VmRSS at the end of the window. on/off: the median of the per-run ratios.\n")
        p("| load | history | subscribers | published msg/s | delivered msg/s | p50 µs | p99 µs | server CPU (cores) | CPU µs / published msg | CPU ns / delivery | server RSS MiB | lost / disconnected | runs |")
        p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for note, label in (("fixed", "1000 msg/s, disconnect"), ("max", "max rate, drop-oldest")):
            for hist in ("history-on", "history-off"):
                rs = fan.get((note, hist))
                if not rs:
                    continue
                p(f"| {label} | {hist.split('-')[1]} | {fmt(med(rs, 'subs'))} | {cell(rs, 'publish_rate')} | {cell(rs, 'deliveries_per_s')} | "
                  f"{cell(rs, 'p50_us')} | {cell(rs, 'p99_us')} | {cell(rs, 'server_cpu', 2)} | {cell(rs, 'cpu_us_per_message')} | "
                  f"{cell(rs, 'cpu_ns_per_delivery')} | {cell(rs, 'server_rss_mib', 1)} | {fmt(med(rs, 'lost'))} / {fmt(med(rs, 'disconnected'))} | {len(rs)} |")
            on, off = fan.get((note, "history-on")), fan.get((note, "history-off"))
            if on and off:
                p(f"| {label} | **on/off** | | {paired(on, off, 'publish_rate')} | {paired(on, off, 'deliveries_per_s')} | "
                  f"{paired(on, off, 'p50_us')} | {paired(on, off, 'p99_us')} | {paired(on, off, 'server_cpu')} | "
                  f"{paired(on, off, 'cpu_us_per_message')} | {paired(on, off, 'cpu_ns_per_delivery')} | {paired(on, off, 'server_rss_kib')} | | |")
        p("")

    def after(rs):
        """The RSS delta and counted history after a v1 client resumed."""
        rows = [dict(r["after_resume"]) for r in rs if isinstance(r.get("after_resume"), dict)]
        if not rows:
            return "–"
        for r in rows:
            r["history_kib"] = r["history_bytes"] / 1024
        return f"{cell(rows, 'rss_delta_kib')} / {cell(rows, 'history_kib', 0)}"

    mem = defaultdict(list)
    for r in rows:
        if r.get("kind") == "history_memory" and "error" not in r:
            mem[(r.get("form"), r.get("fill"), r.get("topics"))].append(r)
    if mem:
        p("## Memory of the history at the defaults\n")
        p("`history_memory`: each topic published 2048 JSON readings (80 bytes), round-robin across topics (`interleaved`) or one topic after the other (`sequential`). "
          "Default retention 1024 messages / 128 KiB per topic, hub budget 2 MiB. `raw`: a bare `Hub::new()`, no subscriber (each kept message holds its frame); "
          "`v1`: a `Server` with one `boardcast.v1` client subscribed to every topic (each message also holds its `m` envelope). "
          "History bytes: `Stats::history_bytes`; RSS: the process's VmRSS before and after the fill.\n")
        p("`v1-resume`: filled as `raw` (on a `Server`'s hub, no subscriber), then a `boardcast.v1` client resumes every topic from its oldest kept message, "
          "which makes each kept message's envelope after its cost was counted: the last two columns are the RSS and `Stats::history_bytes` then.\n")
        p("| form | fill | topics | history bytes / message | messages kept per topic (min–max) | history KiB / topic | history KiB in all | budget capped | RSS delta KiB in all | RSS KiB / topic | after a v1 resume: RSS delta KiB / history KiB | runs |")
        p("|---|---|---:|---:|---|---:|---:|---|---:|---:|---|---:|")
        forms = {"raw": 0, "v1": 1, "v1-resume": 2}
        for key in sorted(mem, key=lambda k: (k[1] != "interleaved", forms.get(k[0], 9), k[2])):
            rs = mem[key]
            for r in rs:
                r["history_kib_per_topic"] = r["history_bytes_per_topic"] / 1024
                r["history_kib"] = r["history_bytes"] / 1024
            kmin, kmax = med(rs, "kept_min"), med(rs, "kept_max")
            kept = fmt(kmin) if kmin == kmax else f"{fmt(kmin)}–{fmt(kmax)}"
            capped = sum(bool(r.get("capped")) for r in rs)
            p(f"| {key[0]} | {key[1]} | {key[2]} | {cell(rs, 'history_bytes_per_message')} | {kept} | {cell(rs, 'history_kib_per_topic', 1)} | "
              f"{cell(rs, 'history_kib', 0)} | {'yes' if capped == len(rs) else ('no' if capped == 0 else f'{capped}/{len(rs)} runs')} | "
              f"{cell(rs, 'rss_delta_kib')} | {cell(rs, 'rss_per_topic_kib')} | {after(rs)} | {len(rs)} |")
        p("")

    res = defaultdict(list)
    for r in rows:
        if r.get("kind") == "resume" and "error" not in r:
            res[(r.get("outage_s"), r.get("listeners", 0))].append(r)
    if res:
        p("## Reconnect and resume\n")
        p("`wsload resume` against `examples/broadcast --rate 100 --size 80` (history on): a `boardcast.v1` client drops its link (a reset), waits the outage, "
          "reconnects and sends `s bench <epoch> <seq>`. Times from the start of the TCP connect, in ms: p50 / p99 / max over the reconnects of all runs "
          "(p50 and p99: the median of the runs'; max: the largest). Caught up: the first message sent after the connect began. "
          "Listeners: other `boardcast.v1` clients subscribed all along (so every message's envelope is made and kept in the history).\n")
        p("| outage s | listeners | reconnects | replayed per reconnect | → 101 | → `r` | → first replayed | → last replayed | → caught up | recovered / not | gaps (despite `r … 1`) / duplicates | runs |")
        p("|---:|---:|---:|---:|---|---|---|---|---|---|---|---:|")

        def t(rs, name):
            p50, p99 = med(rs, f"{name}_p50_ms"), med(rs, f"{name}_p99_ms")
            mx = max((r[f"{name}_max_ms"] for r in rs if num(r.get(f"{name}_max_ms"))), default=None)
            return f"{fmt(p50, 2)} / {fmt(p99, 2)} / {fmt(mx, 2)}"

        for key in sorted(res):
            rs = res[key]
            total = lambda k: sum(r.get(k, 0) for r in rs)
            p(f"| {key[0]} | {key[1]} | {total('reconnects')} | {cell(rs, 'replayed_mean')} | {t(rs, 'upgraded')} | {t(rs, 'answered')} | "
              f"{t(rs, 'first_replayed')} | {t(rs, 'replay_done')} | {t(rs, 'caught_up')} | {total('recovered')} / {total('not_recovered')} | "
              f"{total('gaps')} ({total('gaps_despite_recovered')}) / {total('duplicates')} | {len(rs)} |")
        p("")
    print("\n".join(out))


def line(text):
    """One measurement as one line, for the driver's progress output."""
    d = json.loads(text)
    k = d.get("kind")
    if k == "fanout":
        d = derive(d)
        print(f"  {d.get('server', '?'):12} fanout {d.get('note', '')} subs={d['subs']:<5} {d['deliveries_per_s']:>10,.0f} deliveries/s  "
              f"p99 {d['p99_us']:>9.1f} us  cpu {d.get('server_cpu')}  {d.get('cpu_us_per_message', 0):.2f} us/msg  "
              f"rss {d.get('server_rss_kib')} KiB  lost {d['lost']}  disconnected {d['disconnected']}")
    elif k == "resume":
        print(f"  resume outage {d['outage_s']} s, listeners {d.get('listeners', 0)}: {d['reconnects']} reconnects, "
              f"{d['replayed_mean']} replayed each; 101 {d['upgraded_p50_ms']} ms, r {d['answered_p50_ms']} ms, "
              f"first replayed {d['first_replayed_p50_ms']} ms, caught up {d['caught_up_p50_ms']} ms (p50); "
              f"recovered {d['recovered']}/{d['reconnects']}, gaps {d['gaps']} (despite r 1: {d['gaps_despite_recovered']}), "
              f"duplicates {d['duplicates']}")
    elif k == "history_memory":
        print(f"  memory {d['form']:9} {d['fill']:11} topics={d['topics']:<4} {d['history_bytes_per_message']:.0f} B/message, "
              f"kept {d['kept_min']}–{d['kept_max']} per topic, {d['history_bytes'] / 1024:.0f} KiB in all"
              f"{' (budget capped)' if d['capped'] else ''}, RSS +{d['rss_delta_kib']} KiB"
              + (f"; after a v1 resume RSS +{d['after_resume']['rss_delta_kib']} KiB, "
                 f"{d['after_resume']['history_bytes'] / 1024:.0f} KiB counted" if isinstance(d.get("after_resume"), dict) else ""))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--line":
        line(sys.argv[2])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "target/bench/history.jsonl")
