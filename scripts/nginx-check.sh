#!/usr/bin/env bash
# Proves that the dashboard example works behind nginx with
# examples/dashboard/nginx.conf: the page and the WebSocket upgrade.
#
# Installs Debian's nginx if it is missing, builds the dashboard example and
# starts it on 127.0.0.1:0 (reading back the port it printed), starts nginx
# in the foreground on a socket bound here and handed to it (nginx takes
# inherited listening sockets from the NGINX environment variable), so no
# other program can take either port between a check and its use; with that
# config templated to the two ports and every path of its own under
# target/nginx-check/, then checks through nginx that:
#   - GET / returns the page, and GET /nope a 404;
#   - a WebSocket to /ws from another origin gets 403, and a request for a
#     host name that is not the board's gets 421 (DNS rebinding);
#   - a WebSocket to /ws with the page's own Origin, as a browser sends it,
#     speaking boardcast.v1, gets the welcome, the board's info and live
#     readings, and its subscribes and unsubscribes are answered;
#   - nginx's access log shows the upgrade (101);
#   - Server-Sent Events pass through unbuffered (the welcome and the info
#     arrive though nothing else follows), and a POST /send to the stream's
#     session is taken (204);
#   - a long poll answers with the info, and the next one, held, with a
#     reading.
# Stops everything it started, and exits non-zero on any failure.
#
# Usage: scripts/nginx-check.sh
# Environment: CARGO_TARGET_DIR is honoured; NGINX_CHECK_TIMEOUT (default 30)
# bounds each wait, in seconds.
set -euo pipefail

cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WORK="$(pwd)/$TARGET_DIR/nginx-check"
[[ "$TARGET_DIR" = /* ]] && WORK="$TARGET_DIR/nginx-check"
TIMEOUT=${NGINX_CHECK_TIMEOUT:-30}

fail() {
    echo "nginx-check: FAILED: $*" >&2
    for log in "$WORK/dashboard.log" "$WORK/logs/error.log"; do
        [ -s "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
    done
    exit 1
}

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

# Waits until the file $1 has a line matching the grep pattern $2, at most
# $TIMEOUT seconds; prints the first.
wait_for_line() {
    local deadline=$((SECONDS + TIMEOUT)) line
    until line=$(grep -m1 -e "$2" "$1" 2>/dev/null); do
        ((SECONDS < deadline)) || fail "no line like '$2' in $1 within ${TIMEOUT}s"
        sleep 0.1
    done
    printf '%s\n' "$line"
}

# Waits until $1 answers over HTTP, at most $TIMEOUT seconds.
wait_for_http() {
    local deadline=$((SECONDS + TIMEOUT))
    until curl -s -o /dev/null --max-time 2 "$1"; do
        ((SECONDS < deadline)) || fail "$1 did not answer within ${TIMEOUT}s"
        sleep 0.1
    done
}

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
    echo "nginx-check: installing nginx"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
command -v curl >/dev/null || fail "curl is needed"

rm -rf "$WORK"
mkdir -p "$WORK/logs" "$WORK/tmp"

echo "nginx-check: building the dashboard example"
cargo build --quiet --example dashboard
# Port 0: the dashboard binds a port the kernel picks and prints it.
"$TARGET_DIR/debug/examples/dashboard" --addr 127.0.0.1:0 >"$WORK/dashboard.log" 2>&1 &
pids+=($!)
line=$(wait_for_line "$WORK/dashboard.log" '^dashboard: open http://127\.0\.0\.1:[0-9]*/$')
APP_PORT=${line##*:}
APP_PORT=${APP_PORT%/}
wait_for_http "http://127.0.0.1:$APP_PORT/"

# The site config as shipped, pointed at the dashboard; nginx's port is
# filled in by the launcher below, which binds it.
sed -e "s/server 127\.0\.0\.1:8080;/server 127.0.0.1:$APP_PORT;/" \
    -e "s/listen 80;/listen 127.0.0.1:NGINX_PORT;/" \
    examples/dashboard/nginx.conf >"$WORK/dashboard.conf.in"
grep -q "server 127.0.0.1:$APP_PORT;" "$WORK/dashboard.conf.in" &&
    grep -q "listen 127.0.0.1:NGINX_PORT;" "$WORK/dashboard.conf.in" ||
    fail "examples/dashboard/nginx.conf no longer has 'server 127.0.0.1:8080;' and 'listen 80;' to template"
cat >"$WORK/nginx.conf" <<EOF
# Written by scripts/nginx-check.sh: nginx in the foreground, every path
# under $WORK.
daemon off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log info;
events {
    worker_connections 64;
}
http {
    access_log $WORK/logs/access.log;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    include $WORK/dashboard.conf;
}
EOF
# The launcher binds 127.0.0.1:0 and keeps the socket, writes the port into
# the config, has nginx check it, and becomes nginx with the socket
# inherited: nginx listens on it as it would on a socket it had bound.
python3 - "$NGINX" "$WORK" <<'PY' &
import os, socket, subprocess, sys

nginx, work = sys.argv[1], sys.argv[2]
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(511)
port = sock.getsockname()[1]
with open(f"{work}/dashboard.conf.in") as template:
    conf = template.read().replace("NGINX_PORT", str(port))
with open(f"{work}/dashboard.conf", "w") as out:
    out.write(conf)
args = [nginx, "-p", work, "-c", f"{work}/nginx.conf", "-e", f"{work}/logs/error.log"]
if subprocess.run([*args[:1], "-t", "-q", *args[1:]]).returncode != 0:
    sys.exit("nginx-check: nginx -t rejected the config")
with open(f"{work}/nginx.port.tmp", "w") as out:
    out.write(f"{port}\n")
os.rename(f"{work}/nginx.port.tmp", f"{work}/nginx.port")
os.set_inheritable(sock.fileno(), True)
os.execve(nginx, args, dict(os.environ, NGINX=f"{sock.fileno()};"))
PY
pids+=($!)
NGINX_PORT=$(wait_for_line "$WORK/nginx.port" '^[0-9][0-9]*$')
PROXY="http://127.0.0.1:$NGINX_PORT"
wait_for_http "$PROXY/"
echo "nginx-check: dashboard on 127.0.0.1:$APP_PORT, nginx on 127.0.0.1:$NGINX_PORT"

# The page, through nginx.
curl -sf --max-time 5 -D "$WORK/page.headers" -o "$WORK/page.html" "$PROXY/" || fail "GET / through nginx"
grep -qi '^content-type: text/html' "$WORK/page.headers" || fail "GET / is not text/html"
grep -q 'window.dashboard' "$WORK/page.html" || fail "GET / through nginx is not the dashboard page"
echo "nginx-check: GET / -> the page ($(wc -c <"$WORK/page.html") bytes)"
status=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$PROXY/nope")
[ "$status" = 404 ] || fail "GET /nope through nginx gave $status, not 404"
echo "nginx-check: GET /nope -> 404"

# Other sites, through nginx: a WebSocket from another origin, and a page
# for a name that is not the board's.
upgrade=(-H 'Upgrade: websocket' -H 'Connection: Upgrade' -H 'Sec-WebSocket-Version: 13'
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')
status=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "${upgrade[@]}" \
    -H 'Origin: http://evil.example' "$PROXY/ws")
[ "$status" = 403 ] || fail "a cross-origin WebSocket through nginx gave $status, not 403"
echo "nginx-check: WebSocket /ws with Origin http://evil.example -> 403"
status=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H 'Host: rebind.evil.example' "$PROXY/")
[ "$status" = 421 ] || fail "GET / for Host rebind.evil.example through nginx gave $status, not 421"
echo "nginx-check: GET / with Host rebind.evil.example -> 421"

# The WebSocket, through nginx: a minimal RFC 6455 client, Python stdlib only.
timeout $((TIMEOUT + 5)) python3 - "$NGINX_PORT" "$TIMEOUT" <<'PY' || fail "WebSocket through nginx"
import base64, hashlib, json, os, socket, struct, sys, time

port, timeout = int(sys.argv[1]), float(sys.argv[2])
deadline = time.monotonic() + timeout


def fail(why):
    sys.exit(f"nginx-check: {why}")


sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
key = base64.b64encode(os.urandom(16)).decode()
sock.sendall((
    f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    f"Sec-WebSocket-Protocol: boardcast.v1\r\n"
    # The page's own origin, as a browser sends it: nginx must pass the
    # Host with its port for the dashboard to see the two agree.
    f"Origin: http://127.0.0.1:{port}\r\n\r\n"
).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    chunk = sock.recv(4096)
    if not chunk:
        fail(f"connection closed during the handshake: {buf!r}")
    buf += chunk
head, buf = buf.split(b"\r\n\r\n", 1)
lines = head.decode("latin-1").split("\r\n")
if lines[0].split(" ")[1:2] != ["101"]:
    fail(f"no upgrade: {lines[0]}")
headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
magic = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
accept = base64.b64encode(hashlib.sha1((key + magic).encode()).digest()).decode()
if headers.get("sec-websocket-accept") != accept:
    fail(f"wrong Sec-WebSocket-Accept: {headers}")


def read_exact(n):
    global buf
    while len(buf) < n:
        if time.monotonic() > deadline:
            fail("timed out")
        chunk = sock.recv(65536)
        if not chunk:
            fail("connection closed")
        buf += chunk
    data, buf = buf[:n], buf[n:]
    return data


def send(opcode, payload):
    # Client frames are masked (RFC 6455 section 5.3).
    mask = os.urandom(4)
    n = len(payload)
    length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x80 | opcode]) + length + mask + masked)


def receive():
    """The next text frame (boardcast.v1) but heartbeats (`h`): its first
    line and the rest; answers pings on the way."""
    while True:
        b0, b1 = read_exact(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", read_exact(8))
        payload = read_exact(n)
        opcode = b0 & 0x0F
        if opcode == 0x9:
            send(0xA, payload)
        elif opcode == 0x8:
            fail(f"the server closed the connection: {payload!r}")
        elif opcode == 0x1 and payload != b"h":
            line, _, rest = payload.decode().partition("\n")
            return line, rest


if headers.get("sec-websocket-protocol") != "boardcast.v1":
    fail(f"boardcast.v1 not selected: {headers}")
line, _ = receive()
if not line.startswith("w "):
    fail(f"expected the welcome, got {line!r}")
send(0x1, b"s sensors/info")
line, _ = receive()
if not line.startswith("r sensors/info "):
    fail(f"expected the answer to the subscribe, got {line!r}")
line, info = receive()
info = json.loads(info)
if not line.startswith("m sensors/info ") or not info.get("sensors"):
    fail(f"expected the board's info, got {line!r} {info}")
topic = f"sensors/{info['hz']}hz"
send(0x1, f"s {topic}".encode())
readings = []
while len(readings) < 5:
    line, rest = receive()
    if line.startswith(f"m {topic} "):
        readings.append(json.loads(rest))
print(f"nginx-check: WebSocket /ws (boardcast.v1) -> info ({len(info['sensors'])} sensors), "
      + "readings like " + json.dumps(readings[-1]["values"], separators=(",", ":")))
send(0x1, f"x {topic}".encode())
while True:
    line, _ = receive()
    if line == f"u {topic}":
        break
print(f"nginx-check: unsubscribe {topic} -> u")
send(0x8, struct.pack("!H", 1000))
PY

# nginx logs an upgraded request once it has finished proxying it, which
# may be after our client is gone: wait for the line.
wait_for_line "$WORK/logs/access.log" '"GET /ws HTTP/1.1" 101 ' >/dev/null

# Server-Sent Events through nginx: the info topic gets nothing after its
# first message, so its events arrive only if nginx does not buffer them.
curl -sN --max-time 3 -H "Origin: $PROXY" "$PROXY/sse?topics=sensors/info" >"$WORK/sse.txt" || true
grep -q '^event: welcome' "$WORK/sse.txt" || fail "no SSE welcome through nginx (buffered?): $(head -c 300 "$WORK/sse.txt")"
grep -q '"type":"info"' "$WORK/sse.txt" || fail "no info event through nginx: $(head -c 300 "$WORK/sse.txt")"
echo "nginx-check: GET /sse -> the welcome and the info, unbuffered"
# A stream kept open, and a POST to its session.
curl -sN --max-time 10 "$PROXY/sse?topics=sensors/info" >"$WORK/sse2.txt" &
pids+=($!)
session=$(wait_for_line "$WORK/sse2.txt" '^data: {"session"' | sed 's/.*"session":"\([0-9a-f]*\)".*/\1/')
status=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' \
    -H "Origin: $PROXY" --data-binary $'d\nhello from nginx-check' "$PROXY/send?session=$session")
[ "$status" = 204 ] || fail "POST /send through nginx gave $status, not 204"
echo "nginx-check: POST /send -> 204"

# Long polling through nginx: the first poll answers at once, the next is
# held until a reading.
first=$(curl -s --max-time 5 "$PROXY/poll?topics=sensors/info")
grep -q '"type":"r"' <<<"$first" || fail "first poll through nginx: $first"
poll_session=$(sed 's/.*"session":"\([0-9a-f]*\)".*/\1/' <<<"$first")
cursor=$(sed 's/.*"cursor":"\([^"]*\)".*/\1/' <<<"$first")
status=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' \
    --data-binary $'s sensors/1hz' "$PROXY/send?session=$poll_session")
[ "$status" = 204 ] || fail "POST /send to a poll session through nginx gave $status"
held=$(curl -s --max-time 30 "$PROXY/poll?session=$poll_session&after=$cursor")
grep -q '"topic":"sensors/1hz"' <<<"$held" || fail "held poll through nginx: $held"
echo "nginx-check: GET /poll -> $(grep -o '"type":"[a-z]"' <<<"$first$held" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
echo "nginx-check: OK (nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'))"
