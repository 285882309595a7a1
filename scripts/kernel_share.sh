#!/usr/bin/env bash
# The kernel's share of a subscriber that never reads: examples/broadcast
# publishing as fast as the hub accepts (drop-oldest, so the subscribers
# stay connected), N raw clients that upgrade and then read nothing, and
# the server side's socket memory as `ss -tm` reports it (skmem: tb is the
# send buffer's size, w the bytes queued in it, rb and r the receive
# buffer's). A measurement, not a check: it prints numbers.
#
#   cargo build --release --example broadcast
#   scripts/kernel_share.sh [CLIENTS] [BROADCAST_BIN]
#
# All traffic goes to 127.0.0.1; the server and the clients are stopped at
# the end. On loopback the clients' own receive buffers fill too: those are
# the client machine's memory on a real network, and are not counted here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CLIENTS=${1:-20}
BIN=${2:-target/release/examples/broadcast}
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release --example broadcast" >&2; exit 2; }

OUT=$(mktemp)
"$BIN" 127.0.0.1:0 --rate 0 --size 1024 --policy drop-oldest >"$OUT" 2>/dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -f "$OUT"' EXIT
for _ in $(seq 100); do
    grep -q "ws://" "$OUT" && break
    sleep 0.05
done
ADDR=$(sed -n 's|.*ws://\([^ ]*\) .*|\1|p' "$OUT")
PORT=${ADDR##*:}

python3 - "$PORT" "$CLIENTS" "$SERVER" <<'EOF'
import re, socket, subprocess, sys, time
port, clients, server = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def sockstat():
    for line in open("/proc/net/sockstat"):
        if line.startswith("TCP:"):
            return int(line.split()[-1])  # pages, every TCP socket of the host

def rss():
    for line in open(f"/proc/{server}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

before_pages, before_rss = sockstat(), rss()
socks = []
for i in range(clients):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    socks.append(s)  # and never read again

def server_side():
    out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return [dict((k, int(v)) for k, v in re.findall(r"([a-z]+)(\d+)", m))
            for m in re.findall(r"skmem:\(([^)]*)\)", out)]

# Let the buffers fill: until the send queues stop growing.
last, stable = -1, 0
deadline = time.time() + 20
while time.time() < deadline and stable < 5:
    total = sum(m.get("w", 0) for m in server_side())
    stable = stable + 1 if total == last else 0
    last = total
    time.sleep(0.2)
mems = server_side()
kib = lambda b: b / 1024
tb = [m["tb"] for m in mems]
w = [m["w"] for m in mems]
print(f"{len(mems)} never-reading subscribers (server side, ss -tm skmem):")
print(f"  send buffer size tb: min {kib(min(tb)):.0f} KiB, max {kib(max(tb)):.0f} KiB")
print(f"  queued w:            min {kib(min(w)):.0f} KiB, max {kib(max(w)):.0f} KiB, "
      f"mean {kib(sum(w) / len(w)):.0f} KiB per subscriber")
print(f"  /proc/net/sockstat TCP mem: {before_pages} -> {sockstat()} pages "
      f"(both ends of every loopback socket of the host)")
print(f"  server VmRSS: {before_rss} -> {rss()} KiB")
for s in socks:
    s.close()
EOF
