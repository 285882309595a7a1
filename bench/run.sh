#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md: boardcast against tungstenite 0.30 and a
# raw TCP echo, same generator (wsload), same machine, servers pinned to
# one core and the generator to another.
#
#   bench/run.sh            the full grid, 5 runs of everything (~30 min)
#   bench/run.sh --smoke    every server and measurement once, tiny
#                           durations, no timing assertions (CI, < 60 s)
#
# Results: target/bench/<mode>.jsonl (one JSON object per measurement),
# target/bench/report-<mode>.md (tables: medians and ratios, targets); the
# full mode also draws target/bench/*.png (bench/plot.py, matplotlib in a
# venv under target/). Environment: SERVER_CPU (0) and CLIENT_CPU (1) pick
# the cores, RUNS overrides the number of runs, BENCH_PORT the port before
# the first one (default 0: each server binds a port the kernel picks, read
# back from /proc, so no other program can take it first; bench/lib.sh),
# BENCH_NICE the scheduling weight on a shared machine (see below).
# All traffic goes to 127.0.0.1; every load is bounded in time and count.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# step, start_server, stop_server, load: shared with bench/compare.sh.
# shellcheck source=bench/lib.sh
. bench/lib.sh

MODE=full
PLOT=1
for arg in "$@"; do
    case "$arg" in
        --smoke) MODE=smoke ;;
        --no-plot) PLOT=0 ;;
        *) echo "usage: bench/run.sh [--smoke] [--no-plot]" >&2; exit 2 ;;
    esac
done

# On a shared machine: with autogroup scheduling, nice ranks processes only
# within their session, so another session's nice-19 job still takes half
# of a core. BENCH_NICE=-10 raises this session's group instead (root).
if [ -n "${BENCH_NICE:-}" ]; then
    echo "$BENCH_NICE" >/proc/self/autogroup
fi

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=target/bench
mkdir -p "$OUT"
RESULTS=$OUT/$MODE.jsonl
SERVER_LOG=$OUT/$MODE-servers.log
: >"$RESULTS"
: >"$SERVER_LOG"

if [ "$MODE" = full ]; then
    RUNS=${RUNS:-5}
    ECHO_CONNS="1 16 128"; ECHO_SIZES="32 1024 65536"; ECHO_TIME="--warmup 0.5 --duration 3"
    MAX_SUBS="1 100 1000"; MAX_TIME="--warmup 2 --duration 5 --grace 0.5"
    FIXED_SUBS="100 1000"; FIXED_TIME="--warmup 1 --duration 5 --grace 1"
    CONN_COUNTS="1000 5000"; CONN_TIME="--settle 1.5"
else
    RUNS=${RUNS:-1}
    ECHO_CONNS="1 4"; ECHO_SIZES="1024"; ECHO_TIME="--warmup 0.1 --duration 0.3"
    MAX_SUBS="10"; MAX_TIME="--warmup 0.3 --duration 0.5 --grace 0.2"
    FIXED_SUBS="10"; FIXED_TIME="--warmup 0.3 --duration 0.5 --grace 0.3"
    CONN_COUNTS="50"; CONN_TIME="--settle 0.2"
fi

step "build (release)"
cargo build --release -p boardcast-bench --bins
cargo build --release --example echo --example broadcast
BIN=target/release

PORT=${BENCH_PORT:-0}
WSLOAD=$BIN/wsload
trap stop_server EXIT
trap 'exit 130' INT TERM

python3 - "$MODE" "$SERVER_CPU" "$CLIENT_CPU" >>"$RESULTS" <<'EOF'
import json, os, platform, subprocess, sys, time
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "src"], capture_output=True, text=True).stdout.strip() != ""
print(json.dumps({"kind": "meta", "mode": sys.argv[1], "cpu": cpu, "cores": os.cpu_count(),
    "kernel": platform.release(), "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    "git": rev + ("+dirty src" if dirty else ""), "server_core": int(sys.argv[2]),
    "client_core": int(sys.argv[3]), "loadavg": open("/proc/loadavg").read().split()[:3],
    "autogroup": open("/proc/self/autogroup").read().strip() if os.path.exists("/proc/self/autogroup") else None}))
EOF

for run in $(seq "$RUNS"); do
    step "run $run of $RUNS: echo (lock-step, one message in flight per connection)"
    # Grid point outside, servers inside: the three servers' measurements of
    # a point are taken back to back, so a slow spell of a shared machine
    # hits all three alike and the per-run ratios (bench/report.py) hold.
    for conns in $ECHO_CONNS; do
        for size in $ECHO_SIZES; do
            for server in boardcast tungstenite tcp; do
                proto=ws
                case $server in
                    boardcast) start_server boardcast "$BIN/examples/echo" --max-connections 10000 ;;
                    tungstenite) start_server tungstenite "$BIN/tungstenite_echo" ;;
                    tcp) start_server tcp "$BIN/tcp_echo"; proto=tcp ;;
                esac
                # shellcheck disable=SC2086
                load "$run" echo --proto $proto --conns "$conns" --size "$size" $ECHO_TIME
                stop_server
            done
        done
    done

    step "run $run of $RUNS: fan-out as fast as the hub accepts (--rate 0, drop-oldest)"
    for subs in $MAX_SUBS; do
        for server in boardcast tungstenite; do
            case $server in
                boardcast) start_server boardcast "$BIN/examples/broadcast" --rate 0 --size 16 --policy drop-oldest ;;
                tungstenite) start_server tungstenite "$BIN/tungstenite_broadcast" --rate 0 --size 16 --policy drop-oldest ;;
            esac
            # shellcheck disable=SC2086
            load "$run" fanout --subs "$subs" --note max $MAX_TIME
            stop_server
        done
    done

    step "run $run of $RUNS: fan-out at 1000 msg/s (default policy: disconnect)"
    for subs in $FIXED_SUBS; do
        for server in boardcast tungstenite; do
            case $server in
                boardcast) start_server boardcast "$BIN/examples/broadcast" --rate 1000 --size 16 ;;
                tungstenite) start_server tungstenite "$BIN/tungstenite_broadcast" --rate 1000 --size 16 ;;
            esac
            # shellcheck disable=SC2086
            load "$run" fanout --subs "$subs" --note fixed $FIXED_TIME
            stop_server
        done
    done

    step "run $run of $RUNS: idle connections (handshakes/s, RSS and threads per connection)"
    for count in $CONN_COUNTS; do
        for server in boardcast-echo boardcast-broadcast tungstenite-echo tungstenite-broadcast tcp-echo; do
            proto=ws
            case $server in
                boardcast-echo) start_server $server "$BIN/examples/echo" --max-connections 10000 ;;
                boardcast-broadcast) start_server $server "$BIN/examples/broadcast" --rate 1 --size 16 ;;
                tungstenite-echo) start_server $server "$BIN/tungstenite_echo" ;;
                tungstenite-broadcast) start_server $server "$BIN/tungstenite_broadcast" --rate 1 --size 16 ;;
                tcp-echo) start_server $server "$BIN/tcp_echo"; proto=tcp ;;
            esac
            # shellcheck disable=SC2086
            load "$run" conns --proto $proto --count "$count" $CONN_TIME
            stop_server
        done
    done
done

if [ "$MODE" = full ]; then
    step "footprint: board-profile binaries and the library's dependency tree"
    cargo build --profile board --example echo
    cargo build --profile board -p boardcast-bench --bin tungstenite_echo --bin tcp_echo
    deps=$(cargo tree -e normal -p boardcast --prefix none | sed 's/ (\*)$//; s/ (.*)$//' | sort -u)
    python3 - "$deps" >>"$RESULTS" <<'EOF'
import json, os, sys
deps = [d for d in sys.argv[1].splitlines() if d.strip()]
size = lambda p: os.path.getsize(p) if os.path.exists(p) else None
print(json.dumps({"kind": "footprint",
    "echo_board_bytes": size("target/board/examples/echo"),
    "tungstenite_echo_board_bytes": size("target/board/tungstenite_echo"),
    "tcp_echo_board_bytes": size("target/board/tcp_echo"),
    "dep_crates": len(deps), "deps": deps}))
EOF
    tail -n 1 "$RESULTS" >&2
fi

step "report"
python3 bench/report.py "$RESULTS" >"$OUT/report-$MODE.md"
echo "wrote $RESULTS and $OUT/report-$MODE.md" >&2

if [ "$MODE" = full ] && [ "$PLOT" = 1 ]; then
    step "plots"
    if [ ! -x "$OUT/venv/bin/python" ]; then
        python3 -m venv "$OUT/venv"
        "$OUT/venv/bin/pip" install --quiet matplotlib
    fi
    "$OUT/venv/bin/python" bench/plot.py "$RESULTS" "$OUT"
fi

if [ "$FAILURES" -gt 0 ]; then
    echo "bench: $FAILURES measurement(s) failed; see $RESULTS and $SERVER_LOG" >&2
    exit 1
fi
echo "bench: $MODE run complete" >&2
