"""Python `websockets` against boardcast's echo example with
permessage-deflate: the extension is negotiated, and messages of several
sizes (text and binary, compressible and not) come back as sent.

    python client.py ws://127.0.0.1:PORT
"""
import asyncio
import os
import sys

import websockets
from websockets.extensions.permessage_deflate import PerMessageDeflate


async def main(url: str) -> None:
    async with websockets.connect(url, compression="deflate", max_size=1 << 20) as ws:
        extensions = ws.protocol.extensions
        assert any(isinstance(e, PerMessageDeflate) for e in extensions), extensions
        response = ws.response.headers.get("Sec-WebSocket-Extensions")
        print(f"python websockets {websockets.__version__}: agreed {response!r}")
        for size in (0, 10, 100, 1000, 65536, 200_000):
            text = ('{"celsius":41.2,"seq":%d}' % size) * (size // 24 + 1)
            text = text[:size]
            await ws.send(text)
            assert await ws.recv() == text, f"text of {size}"
            data = os.urandom(size)
            await ws.send(data)
            assert await ws.recv() == data, f"binary of {size}"
    print("python websockets: OK")


asyncio.run(main(sys.argv[1]))
