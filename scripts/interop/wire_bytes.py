"""Bytes on the wire for the dashboard's readings, with and without
permessage-deflate: two raw-socket clients (one offering the extension as
a browser does, one not) on the same dashboard at once, counting every
byte the server sends after the 101 response until each has N readings.

    python wire_bytes.py DASHBOARD_BINARY [N]

DASHBOARD_BINARY is the dashboard example built with --features deflate.
Prints one line per client: frames, bytes, bytes per reading.
"""
import base64
import os
import re
import socket
import subprocess
import sys
import zlib


def connect(port, offer):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    agreed = re.search(rb"(?i)sec-websocket-extensions: ([^\r]*)", head)
    return s, agreed.group(1).decode() if agreed else None


def read_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "closed"
        out += chunk
    return out


def frames(s):
    """Yields (rsv1, opcode, payload, wire bytes) of each server frame."""
    while True:
        b0, b1 = read_exact(s, 2)
        n, size = b1 & 0x7F, 2
        if n == 126:
            n, size = int.from_bytes(read_exact(s, 2), "big"), 4
        elif n == 127:
            n, size = int.from_bytes(read_exact(s, 8), "big"), 10
        yield bool(b0 & 0x40), b0 & 0x0F, read_exact(s, n), size + n


def main():
    binary, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 500
    proc = subprocess.Popen([binary, "--addr", "127.0.0.1:0", "--rate", "50"],
                            stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        clients = [("plain", *connect(port, None)),
                   ("deflate", *connect(port, "permessage-deflate; client_max_window_bits"))]
        for label, s, agreed in clients:
            readings = sizes = wire = compressed = 0
            sample = None
            for rsv1, opcode, payload, size in frames(s):
                if rsv1:
                    compressed += 1
                    payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
                if opcode != 1 or b'"type":"reading"' not in payload:
                    continue
                readings += 1
                wire += size
                sizes += len(payload)
                sample = sample or payload
                if readings == n:
                    break
            print(f"{label:8} agreed={agreed!r}: {n} readings, {sizes} bytes of JSON "
                  f"({sizes / n:.0f} per reading), {wire} bytes of frames "
                  f"({wire / n:.1f} per reading), {compressed} frames compressed")
        print("a reading:", sample.decode()[:300])
    finally:
        proc.terminate()
        proc.wait()


main()
