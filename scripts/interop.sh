#!/usr/bin/env bash
# Interop with permessage-deflate: Python `websockets` and Node `ws`, each
# with compression on, against the echo example built with --features
# deflate on 127.0.0.1:0. Installs the clients under target/ (a venv, and
# an npm prefix); needs python3-venv and node/npm.
#
#   scripts/interop.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=$TARGET_DIR/interop-venv
NODE_PREFIX=$TARGET_DIR/interop-node
WEBSOCKETS_VERSION=15.0.1
WS_VERSION=8.18.3

log() { printf '==> %s\n' "$*" >&2; }

if ! "$VENV/bin/python" -c "import websockets" 2>/dev/null; then
    log "installing websockets==$WEBSOCKETS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION"
fi
if [ ! -d "$NODE_PREFIX/node_modules/ws" ]; then
    log "installing ws@$WS_VERSION into $NODE_PREFIX"
    mkdir -p "$NODE_PREFIX"
    npm install --silent --no-audit --no-fund --prefix "$NODE_PREFIX" "ws@$WS_VERSION" >/dev/null
fi

log "building the echo example with --features deflate"
cargo build --release --quiet --example echo --features deflate
SERVER_LOG=$(mktemp)
"$TARGET_DIR/release/examples/echo" 127.0.0.1:0 >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; rm -f "$SERVER_LOG"' EXIT
# The example prints its address once it listens.
for _ in $(seq 100); do
    URL=$(grep -o 'ws://[0-9.:]*' "$SERVER_LOG" || true)
    [ -z "$URL" ] || break
    kill -0 "$SERVER_PID" || { cat "$SERVER_LOG"; exit 1; }
    sleep 0.1
done
[ -n "$URL" ] || { echo "the echo example did not start" >&2; exit 1; }
log "echo server at $URL"

"$VENV/bin/python" scripts/interop/client.py "$URL"
NODE_PATH=$NODE_PREFIX/node_modules node scripts/interop/client.js "$URL"
log "interop passed"
