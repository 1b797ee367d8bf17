"""What a web stack costs a process that already runs edged: RSS and time to listen.

How the kiosk screen's server was chosen (issue 14). Each run imports the daemon first, then
starts a server with one page and one WebSocket and reads VmRSS; a raw socket plays the client
so no client library counts.

    .venv/bin/python scripts/web_stack_cost.py websockets
    .venv/bin/pip install aiohttp && .venv/bin/python scripts/web_stack_cost.py aiohttp
"""

import asyncio
import sys
import time
from pathlib import Path

import edged.app.daemon  # noqa: F401  (the daemon's own imports first)


def rss_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


base = rss_kb()
which = sys.argv[1]
t0 = time.perf_counter()


async def main():
    if which == "aiohttp":
        from aiohttp import web

        app = web.Application()

        async def index(_r):
            return web.Response(text="<html>hi</html>", content_type="text/html")

        async def ws(r):
            s = web.WebSocketResponse()
            await s.prepare(r)
            await s.send_str("snapshot")
            async for _ in s:
                pass
            return s

        app.router.add_get("/", index)
        app.router.add_get("/ws", ws)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
    else:
        from websockets.asyncio.server import serve
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        async def handler(conn):
            await conn.send("snapshot")
            async for _ in conn:
                pass

        def process_request(conn, req):
            if req.path == "/":
                return Response(
                    200, "OK", Headers([("Content-Type", "text/html")]), b"<html>hi</html>"
                )

        server = await serve(handler, "127.0.0.1", 0, process_request=process_request)
        port = server.sockets[0].getsockname()[1]
    started = time.perf_counter() - t0
    # one page fetch + one websocket client, from a raw socket to keep the client out of RSS
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await w.drain()
    await r.read()
    w.close()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await w.drain()
    await r.read(200)
    await asyncio.sleep(0.2)
    added = (rss_kb() - base) / 1024
    print(
        f"{which}: start {started * 1000:.0f} ms, RSS +{added:.1f} MB (base {base / 1024:.1f} MB)"
    )
    w.close()


asyncio.run(main())
