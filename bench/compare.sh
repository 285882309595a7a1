#!/usr/bin/env bash
# Before and after: boardcast's own servers (examples/echo and
# examples/broadcast) built at two revisions, measured on the points issue
# 12 names, each "before" measurement paired with an "after" one taken
# right next to it.
#
#   bench/compare.sh BASE_REV NEW_REV           5 runs (RUNS=...), ~8 min + builds
#   bench/compare.sh --smoke BASE_REV NEW_REV   every point once, tiny (< 1 min + builds)
#
#   e.g. bench/compare.sh 048e4d4 HEAD
#
# Revisions are commits: uncommitted changes are not in them. Each is
# checked out in a temporary git worktree (target/compare/<commit>, removed
# afterwards) and built in release with its own CARGO_TARGET_DIR
# (target/compare/cargo-<commit>, kept: a second comparison only rebuilds
# what changed); the two servers are copied to target/compare/bin/before/
# and target/compare/bin/after/. wsload is built once, from this checkout:
# only the server differs between the two sides.
#
# Points (full): echo at 16 and 128 connections x 32 B, 1 KiB, 64 KiB;
# fan-out to 1000 subscribers at --rate 0 (drop-oldest) and at 1000 msg/s
# (disconnect); RSS per idle connection at 1000 connections, echo and
# broadcast. The same wsload modes, options and durations as bench/run.sh.
# Within a run the two sides of a point are measured back to back, and the
# side that goes first alternates from run to run (before first in odd
# runs, after first in even ones), so neither a slow spell of the shared
# machine nor going first favours one side.
#
# Results: target/compare/compare.jsonl (one JSON object per measurement;
# "server" is before or after, "note" the point) and
# target/compare/report.md (bench/compare_report.py: medians, the median of
# the per-run after/before ratios, ranges, points worse by more than 5 %).
# Environment as bench/run.sh: SERVER_CPU (0), CLIENT_CPU (1), RUNS,
# BENCH_NICE; BENCH_PORT: the port before the first one (each server takes
# the next); unset, every server gets a port the kernel picks.
# All traffic goes to 127.0.0.1; every load is bounded in time and count.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

usage() {
    echo "usage: bench/compare.sh [--smoke] BASE_REV NEW_REV   (e.g. bench/compare.sh 048e4d4 HEAD)" >&2
    exit 2
}

MODE=full
REVS=()
for arg in "$@"; do
    case "$arg" in
        --smoke) MODE=smoke ;;
        -h|--help) usage ;;
        -*) usage ;;
        *) REVS+=("$arg") ;;
    esac
done
[ ${#REVS[@]} -eq 2 ] || usage

if [ -n "${BENCH_NICE:-}" ]; then
    echo "$BENCH_NICE" >/proc/self/autogroup
fi

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=target/compare
mkdir -p "$OUT"
RESULTS=$OUT/compare.jsonl
SERVER_LOG=$OUT/servers.log
REPORT=$OUT/report.md

if [ "$MODE" = full ]; then
    RUNS=${RUNS:-5}
    ECHO_CONNS="16 128"; ECHO_SIZES="32 1024 65536"; ECHO_TIME="--warmup 0.5 --duration 3"
    SUBS=1000
    MAX_TIME="--warmup 2 --duration 5 --grace 0.5"
    FIXED_TIME="--warmup 1 --duration 5 --grace 1"
    CONN_COUNT=1000; CONN_TIME="--settle 1.5"
else
    RUNS=${RUNS:-1}
    ECHO_CONNS="16 128"; ECHO_SIZES="32 1024 65536"; ECHO_TIME="--warmup 0.1 --duration 0.3"
    SUBS=50
    MAX_TIME="--warmup 0.3 --duration 0.5 --grace 0.2"
    FIXED_TIME="--warmup 0.3 --duration 0.5 --grace 0.3"
    CONN_COUNT=50; CONN_TIME="--settle 0.2"
fi

# --- build -----------------------------------------------------------------

WORKTREES=()
cleanup() {
    stop_server
    local wt
    for wt in ${WORKTREES[@]+"${WORKTREES[@]}"}; do
        git worktree remove --force "$wt" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# echo_cap ECHO: the option that lifts the echo example's connection cap,
# for builds that have one (older ones take no options).
echo_cap() {
    # --help exits 2 after the usage line: not a failure of the pipeline.
    if { "$1" --help 2>&1 || true; } | grep -q -- --max-connections; then
        echo "--max-connections 10000"
    fi
}

# build_rev COMMIT: builds that commit's release echo and broadcast in its
# own worktree and target dir; BUILT_DIR is the directory holding them.
build_rev() {
    local commit=$1 wt target
    wt=$OUT/${commit:0:12}
    target=$PWD/$OUT/cargo-${commit:0:12}
    # A worktree left by an interrupted comparison: replace it.
    if [ -e "$wt" ]; then
        git worktree remove --force "$wt" 2>/dev/null || rm -rf -- "$wt"
    fi
    git worktree prune
    git worktree add --quiet --detach "$wt" "$commit"
    WORKTREES+=("$wt")
    (cd "$wt" && CARGO_TARGET_DIR=$target cargo build --release --example echo --example broadcast)
    git worktree remove --force "$wt"
    BUILT_DIR=$target/release/examples
}

declare -A COMMIT=()
BASE_COMMIT=$(git rev-parse --verify --quiet "${REVS[0]}^{commit}") || { echo "compare: no commit ${REVS[0]}" >&2; exit 2; }
NEW_COMMIT=$(git rev-parse --verify --quiet "${REVS[1]}^{commit}") || { echo "compare: no commit ${REVS[1]}" >&2; exit 2; }
COMMIT[before]=$BASE_COMMIT
COMMIT[after]=$NEW_COMMIT

step "build wsload (release, this checkout)"
cargo build --release -p boardcast-bench --bin wsload
WSLOAD=target/release/wsload

rm -rf -- "${OUT:?}/bin"
declare -A BUILT=()
for label in before after; do
    commit=${COMMIT[$label]}
    if [ -z "${BUILT[$commit]:-}" ]; then
        step "build $label: ${commit:0:12} ($(git log -1 --format=%s "$commit"))"
        build_rev "$commit"
        BUILT[$commit]=$BUILT_DIR
    else
        step "build $label: ${commit:0:12}, already built"
    fi
    mkdir -p "$OUT/bin/$label"
    cp "${BUILT[$commit]}/echo" "${BUILT[$commit]}/broadcast" "$OUT/bin/$label/"
done

# --- measure ---------------------------------------------------------------

: >"$RESULTS"
: >"$SERVER_LOG"
PORT=${BENCH_PORT:-0}

python3 - "$MODE" "$SERVER_CPU" "$CLIENT_CPU" "$RUNS" "${REVS[0]}" "$BASE_COMMIT" "${REVS[1]}" "$NEW_COMMIT" "$OUT/bin" >>"$RESULTS" <<'EOF'
import hashlib, json, os, platform, subprocess, sys, time
mode, server_core, client_core, runs, base_rev, base, new_rev, new, bins = sys.argv[1:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]
def side(rev, commit, label):
    subject = subprocess.run(["git", "log", "-1", "--format=%s", commit], capture_output=True, text=True).stdout.strip()
    return {"rev": rev, "commit": commit[:12], "subject": subject,
            "echo_sha256": sha(os.path.join(bins, label, "echo")),
            "broadcast_sha256": sha(os.path.join(bins, label, "broadcast"))}
wsload_rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
if subprocess.run(["git", "status", "--porcelain", "bench"], capture_output=True, text=True).stdout.strip():
    wsload_rev += "+dirty bench"
print(json.dumps({"kind": "meta", "mode": "compare-" + mode, "runs": int(runs), "cpu": cpu, "cores": os.cpu_count(),
    "kernel": platform.release(), "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    "before": side(base_rev, base, "before"), "after": side(new_rev, new, "after"),
    "git": wsload_rev, "server_core": int(server_core), "client_core": int(client_core),
    "loadavg": open("/proc/loadavg").read().split()[:3],
    "autogroup": open("/proc/self/autogroup").read().strip() if os.path.exists("/proc/self/autogroup") else None}))
EOF

BIN=$OUT/bin
for run in $(seq "$RUNS"); do
    if [ $((run % 2)) = 1 ]; then ORDER="before after"; else ORDER="after before"; fi

    step "run $run of $RUNS ($ORDER): echo (lock-step, one message in flight per connection)"
    for conns in $ECHO_CONNS; do
        for size in $ECHO_SIZES; do
            for label in $ORDER; do
                # shellcheck disable=SC2046
                start_server "$label" "$BIN/$label/echo" $(echo_cap "$BIN/$label/echo")
                # shellcheck disable=SC2086
                load "$run" echo --proto ws --conns "$conns" --size "$size" --note "echo-${conns}x$size" $ECHO_TIME
                stop_server
            done
        done
    done

    step "run $run of $RUNS ($ORDER): fan-out to $SUBS as fast as the hub accepts (--rate 0, drop-oldest)"
    for label in $ORDER; do
        start_server "$label" "$BIN/$label/broadcast" --rate 0 --size 16 --policy drop-oldest
        # shellcheck disable=SC2086
        load "$run" fanout --subs "$SUBS" --note "fanout-rate0-$SUBS" $MAX_TIME
        stop_server
    done

    step "run $run of $RUNS ($ORDER): fan-out to $SUBS at 1000 msg/s (default policy: disconnect)"
    for label in $ORDER; do
        start_server "$label" "$BIN/$label/broadcast" --rate 1000 --size 16
        # shellcheck disable=SC2086
        load "$run" fanout --subs "$SUBS" --note "fanout-rate1000-$SUBS" $FIXED_TIME
        stop_server
    done

    step "run $run of $RUNS ($ORDER): $CONN_COUNT idle connections (RSS per connection)"
    for shape in echo broadcast; do
        for label in $ORDER; do
            # shellcheck disable=SC2046
            case $shape in
                echo) start_server "$label" "$BIN/$label/echo" $(echo_cap "$BIN/$label/echo") ;;
                broadcast) start_server "$label" "$BIN/$label/broadcast" --rate 1 --size 16 ;;
            esac
            # shellcheck disable=SC2086
            load "$run" conns --proto ws --count "$CONN_COUNT" --note "idle-$shape-$CONN_COUNT" $CONN_TIME
            stop_server
        done
    done
done

step "report"
python3 bench/compare_report.py "$RESULTS" >"$REPORT"
cat "$REPORT"
echo "wrote $RESULTS and $REPORT" >&2

if [ "$FAILURES" -gt 0 ]; then
    echo "compare: $FAILURES measurement(s) failed; see $RESULTS and $SERVER_LOG" >&2
    exit 1
fi
echo "compare: $MODE comparison complete" >&2
