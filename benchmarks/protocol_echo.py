"""What the HTTP layer alone costs: echo_server.py's once echo without aiohttp.

The same answers as the bare echo (once_answer, the same JSON, CORS headers, Date
and Server), read and written by a plain asyncio protocol on uvloop: requests
with a Content-Length, keep-alive, nothing else (no chunked bodies, no limits, no
error handling worth the name). Not a server to use: a reference for how much
of a request aiohttp's web layer is, which aiges's fast path
(aiges/server/fast.py) skips.

    python benchmarks/protocol_echo.py --port 8080
    python benchmarks/run.py --targets protocol     # against the bare echo
"""
from __future__ import annotations

import asyncio
import functools
import signal
import sys
import uuid
from email.utils import formatdate

import echo_server
import orjson
from aiohttp.http import SERVER_SOFTWARE
from echo_server import CORS, once_answer

HEAD = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
        "".join(f"{k}: {v}\r\n" for k, v in CORS.items()) +
        f"Server: {SERVER_SOFTWARE}\r\n").encode()
HEALTH = b'{"status":"ok"}'


class Echo(asyncio.Protocol):
    def __init__(self, service: str):
        self.route = f"/v1/{service}".encode()
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            lines = buf[:end].split(b"\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if len(buf) < end + 4 + length:
                break
            body, buf = buf[end + 4:end + 4 + length], buf[end + 4 + length:]
            path = lines[0].split(b" ")[1]
            self.transport.write(self.answer(body) if path == self.route else
                                 self.reply(HEALTH))
        self.buf = buf

    def answer(self, body: bytes) -> bytes:
        return self.reply(orjson.dumps(once_answer(orjson.loads(body), uuid.uuid4().hex)))

    @staticmethod
    def reply(body: bytes) -> bytes:
        return b"%sContent-Length: %d\r\nDate: %s\r\n\r\n%s" % (
            HEAD, len(body), formatdate(usegmt=True).encode(), body)


async def serve_with(protocol, host: str, port: int, service: str) -> None:
    """Serve ``protocol(service)`` connections until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(lambda: protocol(service), host, port,
                                      reuse_address=True)
    print(f"ready on http://{host}:{port}/v1/{service}", file=sys.stderr, flush=True)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    return echo_server.main(argv, functools.partial(serve_with, Echo),
                            "the once echo on a plain asyncio protocol")


if __name__ == "__main__":
    sys.exit(main())
