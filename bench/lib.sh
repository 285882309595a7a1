# shellcheck shell=bash
# Shell functions shared by bench/run.sh and bench/compare.sh: starting and
# stopping a server pinned to its core, and one wsload measurement pinned
# to the other. Sourced (not run) after `set -euo pipefail`.
#
# The caller sets:
#   SERVER_CPU, CLIENT_CPU  the cores (taskset -c) of the server and of wsload
#   WSLOAD                  the wsload binary
#   RESULTS                 the JSON lines file measurements are appended to
#   SERVER_LOG              where the servers' output goes
#   PORT                    0: every server gets a port the kernel picks
#                           (127.0.0.1:0, found afterwards in /proc), so no
#                           other program can take it first; otherwise the
#                           port before the first one: each start takes the
#                           next (PORT+1, PORT+2, ...)
# and reads back ADDR, SERVER_PID, SERVER_NAME and FAILURES.

SERVER_PID=
FAILURES=0

step() { printf '\n=== %s\n' "$*" >&2; }

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

# listen_port PID: the port of a socket that process PID itself listens on
# at 127.0.0.1 (matched by inode between /proc/PID/fd and /proc/net/tcp),
# or a failure if it has none yet.
listen_port() {
    local pid=$1 fd target sl local_addr rem st txrx trtm retr uid timeout inode rest
    local -A mine=()
    for fd in /proc/"$pid"/fd/*; do
        target=$(readlink "$fd" 2>/dev/null) || continue
        case $target in
            'socket:['*']') target=${target#socket:[}; mine[${target%]}]=1 ;;
        esac
    done
    [ ${#mine[@]} -gt 0 ] || return 1
    # shellcheck disable=SC2034  # the fields of /proc/net/tcp, most unused
    while read -r sl local_addr rem st txrx trtm retr uid timeout inode rest; do
        if [ "$st" = 0A ] && [ "${local_addr%:*}" = 0100007F ] && [ -n "${mine[$inode]:-}" ]; then
            printf '%d\n' "0x${local_addr#*:}"
            return 0
        fi
    done </proc/net/tcp
    return 1
}

# start_server NAME PROGRAM [ARGS...]: starts it on the server core at a
# fresh 127.0.0.1 port (ADDR), and waits until it listens.
start_server() {
    local name=$1
    shift
    for _attempt in 1 2 3 4 5; do
        if [ "$PORT" = 0 ]; then
            ADDR=127.0.0.1:0
        else
            PORT=$((PORT + 1))
            ADDR=127.0.0.1:$PORT
        fi
        SERVER_NAME=$name
        echo "--- $name on $ADDR: $*" >>"$SERVER_LOG"
        taskset -c "$SERVER_CPU" "$1" "$ADDR" "${@:2}" >>"$SERVER_LOG" 2>&1 &
        SERVER_PID=$!
        local hex port
        hex=$(printf '%04X' "$PORT")
        for _ in $(seq 100); do
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then
                wait "$SERVER_PID" 2>/dev/null || true
                SERVER_PID=
                break
            fi
            if [ "$PORT" = 0 ]; then
                if port=$(listen_port "$SERVER_PID"); then
                    ADDR=127.0.0.1:$port
                    echo "--- $name listens on $ADDR (pid $SERVER_PID)" >>"$SERVER_LOG"
                    return 0
                fi
            elif grep -q "0100007F:$hex 00000000:0000 0A" /proc/net/tcp; then
                return 0
            fi
            sleep 0.05
        done
        stop_server
    done
    echo "bench: $name would not start" >&2
    exit 1
}

# load RUN MODE [ARGS...]: one wsload measurement on the client core,
# appended to the results; a failure is recorded and counted.
load() {
    local run=$1 mode=$2
    shift 2
    local line
    if line=$(timeout -k 5 180 taskset -c "$CLIENT_CPU" "$WSLOAD" "$mode" --addr "$ADDR" \
        --server-pid "$SERVER_PID" --server "$SERVER_NAME" --run "$run" "$@"); then
        echo "$line" >>"$RESULTS"
        summary "$line"
    else
        FAILURES=$((FAILURES + 1))
        printf '{"kind":"%s","server":"%s","run":%s,"error":"wsload failed","args":"%s"}\n' \
            "$mode" "$SERVER_NAME" "$run" "$*" >>"$RESULTS"
        echo "bench: FAILED: $SERVER_NAME $mode $*" >&2
    fi
}

summary() {
    python3 bench/report.py --line "$1" >&2
}
