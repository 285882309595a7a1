"""Echo round trips per second through one connection, lock-step, with a
Python `websockets` 15 client (the same generator for every server), for
messages of JSON readings of SIZE bytes, compression on or off.

    python echo_rate.py URL SIZE on|off [SECONDS]

Prints: round trips per second, and the MB/s of message payload each way.
"""
import asyncio
import sys
import time

import websockets


async def main():
    url, size, compression = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "on"
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    text, i = "", 0
    while len(text) < size:
        text += '{"topic":"sensors/cpu","celsius":%d.%d,"seq":%d}' % (40 + i % 9, i % 10, i)
        i += 1
    text = text[:size]
    async with websockets.connect(url, compression="deflate" if compression else None,
                                  max_size=1 << 20) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
        assert bool(agreed) == compression, agreed
        for _ in range(20):  # warm-up
            await ws.send(text)
            assert await ws.recv() == text
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            await ws.send(text)
            assert await ws.recv() == text
            n += 1
        elapsed = time.perf_counter() - start
    print(f"{n / elapsed:.0f} round trips/s, {n * size / elapsed / 1e6:.1f} MB/s each way")


asyncio.run(main())
