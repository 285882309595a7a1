"""Fan-out with or without permessage-deflate: N clients (Python
`websockets` 15, one process) of the broadcast example, which subscribes
every client to its topic; counts what they receive for SECONDS, and the
server's CPU over the same window.

    python fanout_rate.py URL CLIENTS on|off SECONDS SERVER_PID

Prints one JSON line: deliveries per second, the share of the expected
(CLIENTS x the rate seen by the first client), and server CPU per
delivered message and per published message.
"""
import asyncio
import json
import os
import sys
import time

import websockets


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def client(url, compression, counts, i, ready):
    async with websockets.connect(url, compression="deflate" if compression else None,
                                  max_size=1 << 20, open_timeout=60, ping_interval=None) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        assert ("permessage-deflate" in agreed) == compression, agreed
        ready.append(i)
        async for _ in ws:
            counts[i] += 1


async def main():
    url, n, compression = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "on"
    seconds, pid = float(sys.argv[4]), int(sys.argv[5])
    counts, ready = [0] * n, []
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(client(url, compression, counts, i, ready)))
        if i % 50 == 49:
            await asyncio.sleep(0)  # let the handshakes run
    deadline = time.monotonic() + 120
    while len(ready) < n:
        if time.monotonic() > deadline:
            sys.exit(f"only {len(ready)} of {n} clients connected")
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)  # warm-up: every client receiving
    before, cpu_before, t0 = sum(counts), cpu_seconds(pid), time.monotonic()
    first_before = counts[0]
    await asyncio.sleep(seconds)
    after, cpu_after, t1 = sum(counts), cpu_seconds(pid), time.monotonic()
    elapsed, delivered = t1 - t0, after - before
    published = (counts[0] - first_before)
    cpu = cpu_after - cpu_before
    print(json.dumps({
        "compression": compression, "clients": n, "seconds": round(elapsed, 2),
        "deliveries_per_s": round(delivered / elapsed),
        "published_per_s": round(published / elapsed, 1),
        "delivered_share": round(delivered / max(1, published * n), 3),
        "server_cpu": round(cpu / elapsed, 3),
        "server_cpu_us_per_delivery": round(cpu / max(1, delivered) * 1e6, 2),
        "server_cpu_us_per_publish": round(cpu / max(1, published) * 1e6, 1),
    }))
    for task in tasks:
        task.cancel()


asyncio.run(main())
