"""The bare reference: the least work a correct aiohttp server of the aiges protocol does.

aiohttp on uvloop, orjson, AppRunner without access log, and the same wire
format as aiges (SPEC section 3 once requests, section 4 WebSocket sessions), but
no engine, pool, session registry, config or validation beyond what decoding
needs: what a Python service of this protocol built the usual way costs. aiges's
once path skips aiohttp's web layer (aiges/server/fast.py), so it can beat this;
its sessions go through aiohttp as this does.

    python benchmarks/echo_server.py --port 8080
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import signal
import sys
import uuid
from collections.abc import Callable

import orjson
import uvloop
from aiohttp import web

DATA_KEYS = ("text", "audio", "image", "video")
# aiges sends these on every response (SPEC: "CORS headers as upstream"), so
# the reference pays for them too and both servers put comparable bytes on the wire.
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Requested-With",
    "Access-Control-Max-Age": "86400",
}


def echo_item(item: dict) -> dict:
    """One payload input -> its echoed output (text as a plain string, else base64)."""
    kind = next(k for k in DATA_KEYS if k in item)
    data = base64.b64decode(item[kind], validate=True)
    out = {k: v for k, v in item.items() if k not in DATA_KEYS and k != "status"}
    out["seq"] = "0"
    out["status"] = str(item.get("status", 3))
    out[kind] = data.decode() if kind == "text" else base64.b64encode(data).decode()
    return out


def once_answer(doc: dict, sid: str) -> dict:
    """A once request's answer document: every input echoed, and a small "params" node,
    as the echo engine adds one (the shapes stay alike). The other reference echoes
    answer with it too."""
    payload = {name: echo_item(item) for name, item in doc["payload"].items()}
    payload["params"] = {"seq": "0", "status": "3", "text": orjson.dumps({"sid": sid}).decode()}
    return {"header": {"code": 0, "sid": sid, "status": 3}, "payload": payload}


def json_response(doc: dict, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status,
                        content_type="application/json", headers=CORS)


async def once(request: web.Request) -> web.Response:
    sid = uuid.uuid4().hex
    try:
        answer = once_answer(orjson.loads(await request.read()), sid)
    except (orjson.JSONDecodeError, binascii.Error, UnicodeDecodeError,
            KeyError, TypeError, AttributeError, StopIteration):
        return json_response({"header": {"code": 10009, "message": "bad request", "sid": sid}},
                             status=400)
    return json_response(answer)


def frame_answer(data: str, sid: str, seq: int) -> tuple[str, int | None]:
    """A session frame's result frame and its status; status None for a bad frame
    (then the text is the error frame, after which the session ends)."""
    try:
        items = orjson.loads(data)["payload"]
        status = max(int(item.get("status", 3)) for item in items.values())
        payload = {name: dict(echo_item(item), seq=str(seq)) for name, item in items.items()}
    except (orjson.JSONDecodeError, binascii.Error, UnicodeDecodeError,
            KeyError, TypeError, AttributeError, StopIteration, ValueError):
        return orjson.dumps(
            {"header": {"code": 10009, "message": "bad frame", "sid": sid}}).decode(), None
    return orjson.dumps({"header": {"code": 0, "message": "success", "sid": sid,
                                    "status": status},
                         "payload": payload}).decode(), status


async def stream(request: web.Request) -> web.WebSocketResponse:
    """A WebSocket session: one result frame per client frame, close after End/Once."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sid = uuid.uuid4().hex
    seq = 0
    async for msg in ws:
        text, status = frame_answer(msg.data, sid, seq)
        # Text frames, as aiges sends: clients see the same message type from both.
        await ws.send_str(text)
        seq += 1
        # A bad frame, or End or Once: the session is over, as aiges closes it.
        if status is None or status >= 2:
            break
    await ws.close()
    return ws


async def health(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def create_app(service: str) -> web.Application:
    # aiges's default [aiges] maxBody: the 16 MB points (22 MB of base64) must fit both.
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post(f"/v1/{service}", once)
    app.router.add_get(f"/v1/{service}", stream)
    app.router.add_get("/health", health)
    return app


async def serve(host: str, port: int, service: str,
                app: Callable[[str], web.Application] = create_app) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app(service), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        print(f"ready on http://{host}:{port}/v1/{service}", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None, server=serve,
         description: str = "bare aiohttp echo of the aiges once protocol") -> int:
    """Also protocol_echo.py's, with its own ``server`` coroutine."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("-s", "--service", default="svcName")
    args = p.parse_args(argv)
    uvloop.run(server(args.host, args.port, args.service))
    return 0


if __name__ == "__main__":
    sys.exit(main())
