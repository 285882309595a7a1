"""Resident memory of the echo example (built with --features deflate)
per connection: N idle connections with and without permessage-deflate,
then after each has echoed one 16 KiB message (busy, then idle again).

    python rss.py ECHO_BINARY [N]
"""
import asyncio
import re
import subprocess
import sys

import websockets


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


async def measure(binary: str, n: int, compression):
    proc = subprocess.Popen([binary, "127.0.0.1:0", "--max-connections", str(n + 10)],
                            stdout=subprocess.PIPE, text=True)
    url = re.search(r"ws://\S+", proc.stdout.readline()).group(0)
    try:
        # A first connection warms the allocator and the code pages.
        async with websockets.connect(url, compression=compression) as ws:
            await ws.send("x" * 100)
            await ws.recv()
        base = rss_kib(proc.pid)
        conns = [await websockets.connect(url, compression=compression, max_size=1 << 20)
                 for _ in range(n)]
        await asyncio.sleep(0.5)
        idle = rss_kib(proc.pid)
        message = ('{"topic":"sensors/cpu","celsius":41.2,"seq":%d}' % 7) * 350
        peak = idle
        for ws in conns:
            await ws.send(message[:16384])
        for ws in conns:
            assert await ws.recv() == message[:16384]
        peak = rss_kib(proc.pid)
        await asyncio.sleep(0.5)
        after = rss_kib(proc.pid)
        for ws in conns:
            await ws.close()
        return base, idle, peak, after
    finally:
        proc.terminate()
        proc.wait()


async def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    for label, compression in (("plain", None), ("deflate", "deflate")):
        base, idle, peak, after = await measure(binary, n, compression)
        print(f"{label:8} n={n} base={base} KiB  idle +{(idle - base) / n:.1f} KiB/conn  "
              f"after one 16 KiB echo each +{(after - base) / n:.1f} KiB/conn "
              f"(peak seen +{(peak - base) / n:.1f})")


asyncio.run(main())
