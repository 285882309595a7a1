#!/usr/bin/env bash
# Autobahn|Testsuite conformance run for boardcast.
#
# Installs the PyPI package kosoku (a runner of the Autobahn|Testsuite case
# files) into a venv under target/, builds and starts the echo example on
# 127.0.0.1:0 (the port it listens on is read back from /proc, so no other
# program can take it between a check and its use), runs kosoku's fuzzing
# client over every case, prints the
# counts per section and result (a markdown table, also written to
# target/autobahn-reports/summary.md) and the list of non-OK cases, and exits
# non-zero unless every case of sections 1-11 is OK or INFORMATIONAL (12-13,
# compression, may be UNIMPLEMENTED). See scripts/autobahn_summary.py.
#
# Usage:
#   scripts/autobahn.sh                      # the whole suite
#   scripts/autobahn.sh -i '1.*' -i 7.7.1    # extra args go to kosoku as is
#   scripts/autobahn.sh -x '9.*'             #   (-i/-x CASE, -p N, ...)
#
# Environment:
#   AUTOBAHN_SERVER_CMD      server to test instead of the echo example: a shell
#                            command in which {addr}, {host} and {port} are
#                            replaced (by 127.0.0.1:0, 127.0.0.1 and 0: the
#                            server must take a port the kernel picks, on
#                            127.0.0.1); with none of them, the address is
#                            appended as the last argument. Its port is the
#                            one a process of its session listens on.
#                            The cargo build is skipped then.
#   AUTOBAHN_PARALLELISM     cases run at once (default 2; a -p in the args wins)
#   AUTOBAHN_TIMEOUT         seconds the kosoku run may take (default 900)
#   AUTOBAHN_STARTUP_TIMEOUT seconds to wait for the server's port (default 30)
#   AUTOBAHN_PYTHON          python used to create the venv (default python3)
#   AUTOBAHN_FEATURES        cargo features of the echo example's build (e.g.
#                            deflate); with deflate, sections 12-13 must be
#                            OK/INFORMATIONAL too (UNIMPLEMENTED fails), and
#                            the reports go to target/autobahn-reports-deflate
#   CARGO_TARGET_DIR         honoured for the binary, venv and reports
set -euo pipefail

KOSOKU_VERSION=0.1.0
HOST=127.0.0.1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
VENV=$TARGET_DIR/autobahn-venv
FEATURES=${AUTOBAHN_FEATURES:-}
REPORTS=$TARGET_DIR/autobahn-reports${FEATURES:+-${FEATURES//[ ,]/-}}
case ",${FEATURES// /,}," in
    *,deflate,*) export AUTOBAHN_REQUIRE_COMPRESSION=1 ;;
esac
PARALLELISM=${AUTOBAHN_PARALLELISM:-2}
RUN_TIMEOUT=${AUTOBAHN_TIMEOUT:-900}
STARTUP_TIMEOUT=${AUTOBAHN_STARTUP_TIMEOUT:-30}
PYTHON=${AUTOBAHN_PYTHON:-python3}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'autobahn.sh: error: %s\n' "$*" >&2; exit 2; }

# Extra arguments go to kosoku; a -p there replaces AUTOBAHN_PARALLELISM.
PAR_ARGS=(-p "$PARALLELISM")
for arg in "$@"; do
    case $arg in
        -p | -p* | --parallelism | --parallelism=*) PAR_ARGS=(); PARALLELISM="(from args)" ;;
        -o | -o* | --outdir | --outdir=*) die "do not pass -o: reports always go to $REPORTS" ;;
    esac
done

START=$SECONDS
SERVER_PID=
SERVER_LOG=
KOSOKU_PID=

# shellcheck disable=SC2317  # called from the EXIT trap
stop_kosoku() {
    [ -n "$KOSOKU_PID" ] || return 0
    # `timeout` passes the TERM on to kosoku.
    kill -TERM "$KOSOKU_PID" 2>/dev/null || true
    wait "$KOSOKU_PID" 2>/dev/null || true
    KOSOKU_PID=
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    local pid=$SERVER_PID target=$SERVER_PID
    SERVER_PID=
    # The server was started as the leader of its own process group (setsid),
    # so signal the group: that also reaches children of a wrapper command.
    local pgid
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') || true
    if [ -z "$pgid" ] || [ "$pgid" = "$pid" ]; then
        target=-$pid
    fi
    kill -TERM -- "$target" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "$target" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
trap 'stop_kosoku; stop_server' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. kosoku in a venv under target/ -------------------------------------
STAMP=$VENV/.kosoku-$KOSOKU_VERSION
if [ ! -f "$STAMP" ] || ! "$VENV/bin/python" -c 'import kosoku' 2>/dev/null; then
    log "installing kosoku==$KOSOKU_VERSION into $VENV"
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set AUTOBAHN_PYTHON)"
    rm -rf "$VENV"
    mkdir -p "$TARGET_DIR"
    "$PYTHON" -m venv "$VENV" ||
        die "could not create a venv with $PYTHON (on Debian: apt-get install python3-venv)"
    timeout --foreground 600 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "kosoku==$KOSOKU_VERSION" || die "pip install kosoku==$KOSOKU_VERSION failed"
    touch "$STAMP"
fi
KOSOKU=$VENV/bin/kosoku
VPY=$VENV/bin/python

# --- 2. the server under test ------------------------------------------------
# Port 0: the server binds a port the kernel picks; which one is read back
# below from the sockets its processes listen on.
PORT=0
ADDR=$HOST:$PORT

if [ -n "${AUTOBAHN_SERVER_CMD:-}" ]; then
    CMD=$AUTOBAHN_SERVER_CMD
    case $CMD in
        *'{addr}'* | *'{host}'* | *'{port}'*) ;;
        *) CMD="$CMD {addr}" ;;
    esac
    CMD=${CMD//\{addr\}/$ADDR}
    CMD=${CMD//\{host\}/$HOST}
    CMD=${CMD//\{port\}/$PORT}
else
    FEATURE_ARGS=()
    [ -z "$FEATURES" ] || FEATURE_ARGS=(--features "$FEATURES")
    log "building the echo example (cargo build --release --example echo ${FEATURE_ARGS[*]})"
    timeout --foreground 1800 cargo build --release --example echo "${FEATURE_ARGS[@]}" ||
        die "cargo build failed"
    BIN=$TARGET_DIR/release/examples/echo
    [ -x "$BIN" ] || die "no binary at $BIN"
    CMD="exec $(printf '%q' "$BIN") $ADDR"
    # Every message compressed: kosoku fails a case that gets an
    # uncompressed text message on a compressed connection (RFC 7692 lets
    # a sender choose per message; see examples/echo.rs).
    [ -z "${AUTOBAHN_REQUIRE_COMPRESSION:-}" ] || CMD="$CMD --deflate-threshold 0"
fi

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
SERVER_LOG=$REPORTS/server.log
log "starting server: $CMD"
setsid bash -c "$CMD" </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

# listen_port: the port a process of the server's session (setsid made
# SERVER_PID its leader) listens on at 127.0.0.1, matched by socket inode
# between /proc/PID/fd and /proc/net/tcp; fails while there is none.
listen_port() {
    "$VPY" - "$SERVER_PID" <<'PY'
import os, sys

session = int(sys.argv[1])
inodes = set()
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        # The fields after the command name (which may hold spaces):
        # state, ppid, pgrp, session.
        if int(stat.rsplit(")", 1)[1].split()[3]) != session:
            continue
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        continue
with open("/proc/net/tcp") as f:
    next(f)
    for line in f:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and local.startswith("0100007F:") and inode in inodes:
            print(int(local.split(":")[1], 16))
            sys.exit(0)
sys.exit(1)
PY
}

deadline=$((SECONDS + STARTUP_TIMEOUT))
until PORT=$(listen_port); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" && rc=0 || rc=$?
        SERVER_PID=
        tail -n 20 "$SERVER_LOG" >&2 || true
        die "server exited (status $rc) before listening; log: $SERVER_LOG"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        tail -n 20 "$SERVER_LOG" >&2 || true
        die "server not listening on $HOST after ${STARTUP_TIMEOUT}s; log: $SERVER_LOG"
    fi
    sleep 0.1
done
ADDR=$HOST:$PORT
log "the server listens on $ADDR"

# --- 3. the fuzzing client ---------------------------------------------------
KOSOKU_LOG=$REPORTS/kosoku.log
log "running kosoku${PAR_ARGS[*]:+ ${PAR_ARGS[*]}}${*:+ $*} against ws://$ADDR (at most ${RUN_TIMEOUT}s)"
run_start=$SECONDS
# In the background so that a signal to this script is handled at once (a
# foreground child would delay the traps until it ended).
timeout --kill-after=10 "$RUN_TIMEOUT" \
    "$KOSOKU" -m fuzzingclient "${PAR_ARGS[@]}" -o "$REPORTS" "$@" "$ADDR" >"$KOSOKU_LOG" 2>&1 &
KOSOKU_PID=$!
wait "$KOSOKU_PID" && krc=0 || krc=$?
KOSOKU_PID=
run_secs=$((SECONDS - run_start))

server_died=
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID" && rc=0 || rc=$?
    SERVER_PID=
    server_died="the server exited (status $rc) during the run; log: $SERVER_LOG"
fi
stop_server

# kosoku exits 1 whenever a case is not OK/NON-STRICT/INFORMATIONAL (so also
# for UNIMPLEMENTED), hence the verdict comes from the report, not from krc.
if [ "$krc" -eq 124 ] || [ "$krc" -eq 137 ]; then
    tail -n 20 "$KOSOKU_LOG" >&2 || true
    die "kosoku did not finish within ${RUN_TIMEOUT}s (AUTOBAHN_TIMEOUT); log: $KOSOKU_LOG"
fi
if [ ! -f "$REPORTS/index.json" ]; then
    tail -n 20 "$KOSOKU_LOG" >&2 || true
    die "kosoku exited with status $krc and wrote no report; log: $KOSOKU_LOG"
fi

[ -z "$server_died" ] || echo "WARNING: $server_died"
set +e
"$VPY" "$ROOT/scripts/autobahn_summary.py" "$REPORTS" "$@"
src=$?
set -e

echo
echo "kosoku run: ${run_secs}s (parallelism $PARALLELISM), whole script: $((SECONDS - START))s"
echo "reports: $REPORTS/index.html (table: $REPORTS/summary.md)"
if [ -n "$server_died" ]; then
    echo "FAIL: $server_died"
    tail -n 20 "$SERVER_LOG" || true
    exit 1
fi
exit "$src"
