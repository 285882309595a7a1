#!/usr/bin/env bash
# The cost of the hub's history (issue 13), for BENCHMARKS.md: fan-out to
# 1000 subscribers with history on (the hub's default retention) and off
# (`Retention::none()`), the time from a reconnect to the replay and to
# being caught up (wsload resume, a boardcast.v1 client), and the memory a
# topic's history takes at the defaults (history_memory, in-process).
#
#   bench/history.sh            5 runs of everything (~15 min)
#   bench/history.sh --smoke    everything once, tiny, no timing assertions
#                               (CI, < 30 s once built)
#   bench/history.sh --only fixed|max|resume|memory
#                               one part only (RUNS runs of it), e.g. to
#                               narrow a noisy on/off ratio with more runs
#
# Results: target/bench/history.jsonl (--smoke: history-smoke.jsonl), one
# JSON object per measurement, and target/bench/report-history.md
# (report-history-smoke.md), tables by bench/history_report.py.
# Environment as for bench/run.sh: SERVER_CPU (0), CLIENT_CPU (1), RUNS,
# BENCH_PORT, BENCH_NICE. All traffic goes to 127.0.0.1; every load is
# bounded in time and count.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# step, start_server, stop_server, load: shared with bench/run.sh.
# shellcheck source=bench/lib.sh
. bench/lib.sh

# The progress line of each measurement (lib.sh's load calls it).
summary() {
    python3 bench/history_report.py --line "$1" >&2
}

MODE=full
ONLY=
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) MODE=smoke ;;
        --only)
            case "${2:-}" in
                fixed | max | resume | memory) ONLY=$2; shift ;;
                *) echo "bench/history.sh: --only fixed|max|resume|memory" >&2; exit 2 ;;
            esac
            ;;
        *) echo "usage: bench/history.sh [--smoke] [--only fixed|max|resume|memory]" >&2; exit 2 ;;
    esac
    shift
done
# part NAME: whether that part runs.
part() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# See bench/run.sh: on a shared machine, raise this session's scheduling
# group (root).
if [ -n "${BENCH_NICE:-}" ]; then
    echo "$BENCH_NICE" >/proc/self/autogroup
fi

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=target/bench
mkdir -p "$OUT"
NAME=history
[ "$MODE" = full ] || NAME=$NAME-smoke
[ -z "$ONLY" ] || NAME=$NAME-$ONLY
RESULTS=$OUT/$NAME.jsonl
REPORT=$OUT/report-$NAME.md
SERVER_LOG=$OUT/history-$MODE-servers.log
: >"$RESULTS"
: >"$SERVER_LOG"

if [ "$MODE" = full ]; then
    RUNS=${RUNS:-5}
    SUBS=1000
    FIXED_TIME="--warmup 1 --duration 5 --grace 1"
    MAX_TIME="--warmup 2 --duration 5 --grace 0.5"
    # outage seconds, reconnects, extra v1 listeners
    RESUMES="0.5:20:0 5:5:0 5:5:1"
    RESUME_READ=1
    TOPIC_COUNTS="1 10 100"
else
    RUNS=${RUNS:-1}
    SUBS=10
    FIXED_TIME="--warmup 0.2 --duration 0.5 --grace 0.2"
    MAX_TIME="--warmup 0.2 --duration 0.5 --grace 0.2"
    RESUMES="0.2:2:0 0.2:2:1"
    RESUME_READ=0.3
    TOPIC_COUNTS="1 10"
fi

step "build (release)"
cargo build --release -p boardcast-bench --bin wsload --bin history_memory
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

# memory RUN FORM FILL TOPICS: one history_memory measurement on the
# server core, appended to the results.
memory() {
    local line
    if line=$(timeout -k 5 120 taskset -c "$SERVER_CPU" "$BIN/history_memory" --run "$1" \
        --form "$2" --fill "$3" --topics "$4"); then
        echo "$line" >>"$RESULTS"
        python3 bench/history_report.py --line "$line" >&2
    else
        FAILURES=$((FAILURES + 1))
        printf '{"kind":"history_memory","run":%s,"error":"history_memory failed","args":"%s"}\n' \
            "$1" "${*:2}" >>"$RESULTS"
        echo "bench: FAILED: history_memory ${*:2}" >&2
    fi
}

for run in $(seq "$RUNS"); do
    # History on and off back to back for each point, the order swapped
    # every other run, so a drift of the shared machine hits both alike.
    if [ $((run % 2)) = 1 ]; then ORDER="on off"; else ORDER="off on"; fi

    if part fixed; then
        step "run $run of $RUNS: fan-out to $SUBS at 1000 msg/s (policy disconnect), history on / off"
        for history in $ORDER; do
            start_server "history-$history" "$BIN/examples/broadcast" --rate 1000 --size 16 --history "$history"
            # shellcheck disable=SC2086
            load "$run" fanout --subs "$SUBS" --note fixed $FIXED_TIME
            stop_server
        done
    fi

    if part max; then
        step "run $run of $RUNS: fan-out to $SUBS as fast as the hub accepts (drop-oldest), history on / off"
        for history in $ORDER; do
            start_server "history-$history" "$BIN/examples/broadcast" --rate 0 --size 16 \
                --policy drop-oldest --history "$history"
            # shellcheck disable=SC2086
            load "$run" fanout --subs "$SUBS" --note max $MAX_TIME
            stop_server
        done
    fi

    if part resume; then
        step "run $run of $RUNS: reconnect and resume (boardcast.v1) at 100 msg/s, 80-byte messages"
        for spec in $RESUMES; do
            IFS=: read -r outage reconnects listeners <<<"$spec"
            start_server history-on "$BIN/examples/broadcast" --rate 100 --size 80
            load "$run" resume --outage "$outage" --reconnects "$reconnects" \
                --listeners "$listeners" --read "$RESUME_READ"
            stop_server
        done
    fi

    if part memory; then
        step "run $run of $RUNS: memory of the history at the defaults (80-byte JSON readings)"
        for topics in $TOPIC_COUNTS; do
            for form in raw v1 v1-resume; do
                memory "$run" "$form" interleaved "$topics"
            done
        done
        if [ "$MODE" = full ]; then
            memory "$run" raw sequential 100
        fi
    fi
done

step "report"
python3 bench/history_report.py "$RESULTS" >"$REPORT"
echo "wrote $RESULTS and $REPORT" >&2

if [ "$FAILURES" -gt 0 ]; then
    echo "bench: $FAILURES measurement(s) failed; see $RESULTS and $SERVER_LOG" >&2
    exit 1
fi
echo "bench: history $MODE run complete" >&2
