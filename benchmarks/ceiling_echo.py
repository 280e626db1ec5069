"""The ceiling: the once echo with nothing but uvloop, llhttp (httptools) and orjson.

echo_server.py's answers (once_answer, the same JSON, CORS headers, Date and Server),
read by httptools' llhttp parser and written by a plain asyncio protocol on uvloop,
with the cheapest sid (16 random bytes in hex) and a Date cached per second: about
the least a Python process can do per request of this protocol, so what is left
between it and aiges is aiges's own work. Not a server to use: no limits, no
timeouts, no error answers beyond closing the connection.

    python benchmarks/ceiling_echo.py --port 8080
    python benchmarks/run.py --targets aiges,ceiling     # aiges against it and bare
"""
from __future__ import annotations

import asyncio
import functools
import os
import sys
from email.utils import formatdate
from time import time

import echo_server
import httptools
import orjson
from echo_server import once_answer
from protocol_echo import HEAD, HEALTH, serve_with


class Echo(asyncio.Protocol):
    __slots__ = ("route", "transport", "parser", "url", "body", "date")

    def __init__(self, service: str):
        self.route = f"/v1/{service}".encode()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.date = (0, b"")

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    # llhttp's callbacks, called from feed_data
    def on_message_begin(self) -> None:
        self.url, self.body = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.transport.write(self.answer(body) if self.url == self.route else
                             self.reply(HEALTH))

    def answer(self, body: bytes) -> bytes:
        return self.reply(orjson.dumps(once_answer(orjson.loads(body), os.urandom(16).hex())))

    def reply(self, body: bytes) -> bytes:
        now = int(time())
        if self.date[0] != now:
            self.date = (now, formatdate(now, usegmt=True).encode())
        return b"%sContent-Length: %d\r\nDate: %s\r\n\r\n%s" % (
            HEAD, len(body), self.date[1], body)


def main(argv: list[str] | None = None) -> int:
    return echo_server.main(argv, functools.partial(serve_with, Echo),
                            "the once echo on uvloop + httptools + orjson")


if __name__ == "__main__":
    sys.exit(main())
