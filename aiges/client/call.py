"""`aiges call`: one once request, or one file streamed over a WebSocket session.

Text outputs are printed, binary outputs saved as <out-dir>/<key>.<ext> (a
stream appends each frame's piece to the same file) and their paths printed.
A non-zero header.code goes to stderr and makes the exit status 1.
"""
from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiohttp import WSMsgType

from aiges.client import request
from aiges.client.request import Spec

HEADERS = {"Content-Type": "application/json"}


@dataclass
class Printer:
    """Prints outputs; saves binary ones, appending within one stream."""
    out_dir: Path
    raw_json: bool = False
    opened: set[str] = field(default_factory=set)

    def show(self, doc: dict, body: str, prefix: str = "") -> None:
        if self.raw_json:
            print(body, flush=True)
            return
        for item in request.outputs(doc):
            if item.text is not None:
                print(f"{prefix}{item.key}: {item.text}", flush=True)
                continue
            path = self.out_dir / f"{item.key}.{item.ext}"
            mode = "ab" if path.name in self.opened else "wb"
            self.opened.add(path.name)
            with path.open(mode) as f:
                f.write(item.data)
            print(f"{prefix}{item.key}: saved {path} ({len(item.data)} bytes, {item.type})",
                  flush=True)


def _error(head: dict, http: int | None = None) -> int:
    where = f" (HTTP {http})" if http else ""
    print(f"aiges call: error {head.get('code')}{where}: {head.get('message', '')}",
          file=sys.stderr)
    return 1


def _parse(body: str) -> dict | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("header"), dict) else None


async def once(url: str, spec: Spec, printer: Printer, timeout: float) -> int:
    body = orjson.dumps(request.once_doc(spec))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        async with http.post(url, data=body, headers=HEADERS) as resp:
            text = await resp.text()
            status = resp.status
    doc = _parse(text)
    if doc is None:
        print(f"aiges call: HTTP {status}, not a response document: {text[:300]}",
              file=sys.stderr)
        return 1
    if doc["header"].get("code") != 0 or status != 200:
        if printer.raw_json:
            print(text)
        return _error(doc["header"], status)
    printer.show(doc, text)
    return 0


async def _send_all(ws: aiohttp.ClientWebSocketResponse, docs: list[dict],
                    interval: float) -> None:
    for i, doc in enumerate(docs):
        if i and interval:
            await asyncio.sleep(interval)
        if ws.closed:
            return
        await ws.send_str(orjson.dumps(doc).decode())


async def stream(url: str, spec: Spec, printer: Printer, timeout: float,
                 chunk_bytes: int, interval_ms: float) -> int:
    docs = request.session_docs(spec, chunk_bytes)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, receive_timeout=timeout) as ws:
            sender = asyncio.create_task(_send_all(ws, docs, interval_ms / 1000))
            try:
                return await _receive_all(ws, printer)
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)


async def _receive_all(ws: aiohttp.ClientWebSocketResponse, printer: Printer) -> int:
    count, final = 0, False
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        doc = _parse(msg.data)
        if doc is None:
            print(f"aiges call: not a result frame: {msg.data[:300]}", file=sys.stderr)
            return 1
        head = doc["header"]
        if head.get("code") != 0:
            if printer.raw_json:
                print(msg.data)
            return _error(head)
        if "payload" not in doc:
            continue  # the ack of a first frame that gave no result at once
        count += 1
        status = head.get("status")
        printer.show(doc, msg.data, prefix=f"[{count} status={status}] ")
        if status in (2, 3):
            final = True
            break
    if not final:
        print(f"aiges call: the server closed after {count} result frames, before the final "
              f"one", file=sys.stderr)
        return 1
    return 0


def run(args) -> int:
    try:
        spec = request.build_spec(args.url, args.text, args.key, args.file, args.param,
                                  args.header, args.res_id)
        if not spec.inputs:
            raise request.UsageError("nothing to send: give --text or --file KEY=PATH")
        if args.stream:
            request.session_docs(spec, args.chunk_bytes)  # checks there is one input
    except request.UsageError as exc:
        print(f"aiges call: error: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    printer = Printer(out_dir, args.json)
    coro = stream(args.url, spec, printer, args.timeout, args.chunk_bytes, args.interval_ms) \
        if args.stream else once(args.url, spec, printer, args.timeout)
    try:
        return _event_loop_run(coro)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        print(f"aiges call: {args.url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _event_loop_run(coro):
    try:
        import uvloop
    except ImportError:  # uvloop is not installed on Windows
        return asyncio.run(coro)
    return uvloop.run(coro)
