#!/usr/bin/env bash
# The transports compared (issue 14), for BENCHMARKS.md: WebSocket
# (boardcast.v1), Server-Sent Events, long polling and polling /latest
# every second, side by side against the broadcast example publishing a
# 60-byte JSON sensor reading (--payload json): 100 clients at 10 and
# 1000 messages/s, then each transport at 1000 clients (what fails).
# Each measurement gets a fresh server; each rate also gets a server with
# no client (the publisher alone), whose CPU the report subtracts.
#
#   bench/transports.sh            RUNS (3) runs of 100 clients, then one
#                                  of 1000 clients per transport and rate
#                                  (~15 min)
#   bench/transports.sh --smoke    once, tiny (CI, < 30 s once built)
#   bench/transports.sh --no-plot  no PNG (no venv, no matplotlib)
#
# Results: target/bench/transports.jsonl (--smoke: transports-smoke.jsonl),
# one JSON object per measurement (wsload transports), the table in
# target/bench/report-transports.md (bench/transports_report.py) and, in
# full mode, target/bench/transports.png (matplotlib in a venv under
# target/). Environment as for bench/run.sh: SERVER_CPU (0), CLIENT_CPU
# (1), RUNS, BENCH_PORT, BENCH_NICE. All traffic goes to 127.0.0.1; every
# load is bounded in time and count.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# step, start_server, stop_server, load: shared with bench/run.sh.
# shellcheck source=bench/lib.sh
. bench/lib.sh

# The progress line of each measurement (lib.sh's load calls it).
summary() {
    python3 bench/transports_report.py --line "$1" >&2
}

MODE=full
PLOT=1
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) MODE=smoke ;;
        --no-plot) PLOT=0 ;;
        *) echo "usage: bench/transports.sh [--smoke] [--no-plot]" >&2; exit 2 ;;
    esac
    shift
done

# See bench/run.sh: on a shared machine, raise this session's scheduling
# group (root).
if [ -n "${BENCH_NICE:-}" ]; then
    echo "$BENCH_NICE" >/proc/self/autogroup
fi

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=target/bench
mkdir -p "$OUT"
NAME=transports
[ "$MODE" = full ] || NAME=$NAME-smoke
RESULTS=$OUT/$NAME.jsonl
REPORT=$OUT/report-$NAME.md
SERVER_LOG=$OUT/$NAME-servers.log
: >"$RESULTS"
: >"$SERVER_LOG"

TRANSPORTS="ws sse poll latest"
if [ "$MODE" = full ]; then
    RUNS=${RUNS:-3}
    CLIENTS=100
    MANY=1000
    RATES="10 1000"
    # The window at each rate: CPU time is counted in 10 ms ticks, so the
    # low rate gets a longer one.
    TIME_LOW="--warmup 2 --duration 20 --grace 1"
    TIME_HIGH="--warmup 2 --duration 10 --grace 1"
    INTERVAL=1
    BASE_TIME="--warmup 1 --duration 10 --grace 0"
else
    RUNS=${RUNS:-1}
    CLIENTS=5
    MANY=20
    RATES="100"
    TIME_LOW="--warmup 0.2 --duration 0.6 --grace 0.2 --settle 0.2"
    TIME_HIGH=$TIME_LOW
    INTERVAL=0.2
    BASE_TIME="--warmup 0.1 --duration 0.3 --grace 0 --settle 0"
fi

step "build (release)"
cargo build --release -p boardcast-bench --bin wsload
cargo build --release --example broadcast
BIN=target/release

PORT=${BENCH_PORT:-0}
WSLOAD=$BIN/wsload
trap stop_server EXIT
trap 'exit 130' INT TERM

python3 - "$NAME" "$SERVER_CPU" "$CLIENT_CPU" >>"$RESULTS" <<'EOF'
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

# measure RUN RATE TRANSPORT CLIENTS: one measurement against a fresh
# broadcast server publishing 60-byte JSON readings at RATE.
measure() {
    local run=$1 rate=$2 transport=$3 clients=$4 time
    start_server "broadcast-$rate" "$BIN/examples/broadcast" --rate "$rate" --size 60 --payload json
    if [ "$clients" = 0 ]; then
        time=$BASE_TIME
    elif [ "$rate" -lt 100 ]; then
        time=$TIME_LOW
    else
        time=$TIME_HIGH
    fi
    # shellcheck disable=SC2086
    load "$run" transports --transport "$transport" --clients "$clients" --interval "$INTERVAL" \
        --rate "$rate" --payload json60 $time
    stop_server
}

for run in $(seq "$RUNS"); do
    for rate in $RATES; do
        step "run $run of $RUNS: $CLIENTS clients at $rate msg/s: the publisher alone, then $TRANSPORTS"
        measure "$run" "$rate" ws 0
        # Each run takes the transports in another order, so a drift of
        # the shared machine does not always hit the same one.
        order=$(echo "$TRANSPORTS" | tr ' ' '\n' | awk -v r="$run" '{a[NR]=$0} END {for (i = 0; i < NR; i++) print a[(i + r - 1) % NR + 1]}')
        for transport in $order; do
            measure "$run" "$rate" "$transport" "$CLIENTS"
        done
    done
done

for rate in $RATES; do
    step "$MANY clients at $rate msg/s: $TRANSPORTS"
    for transport in $TRANSPORTS; do
        measure 1 "$rate" "$transport" "$MANY"
    done
done

step "report"
python3 bench/transports_report.py "$RESULTS" >"$REPORT"
echo "wrote $RESULTS and $REPORT" >&2

if [ "$MODE" = full ] && [ "$PLOT" = 1 ]; then
    step "plot"
    if [ ! -x "$OUT/venv/bin/python" ]; then
        python3 -m venv "$OUT/venv"
        "$OUT/venv/bin/pip" install --quiet matplotlib
    fi
    "$OUT/venv/bin/python" bench/transports_report.py --plot "$OUT/transports.png" "$RESULTS"
    echo "wrote $OUT/transports.png" >&2
fi

if [ "$FAILURES" -gt 0 ]; then
    echo "bench: $FAILURES measurement(s) failed; see $RESULTS and $SERVER_LOG" >&2
    exit 1
fi
echo "bench: transports $MODE run complete" >&2
