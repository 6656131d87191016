"""The HTTP side of ``almanet ui``: an aiohttp app on the loop of one almanet session.

Every request but the static assets carries the per-run token (``?token=`` or the
``X-Almanet-Token`` header); a page of another site cannot know it, so it can neither read the
catalog nor call anything. API requests that name a foreign ``Origin`` are refused as well, and
writes (call, produce) are gone with ``--read-only``. Live views are websockets, each on its own
ephemeral channel, closed with the socket: nsqd deletes the channel when its last reader leaves.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from almanet import broker_error, invalid_argument, rpc_error
from almanet._nsq.names import check_name
from almanet._wire.protocol import check_uri

from ..consume import message_line
from .catalog import CatalogCache

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Almanet-Token"
MAX_BODY = 1024 * 1024  # nsqd's default --max-msg-size
MAX_WATCHES = 16
MAX_CALL_TIMEOUT = 300.0
_ASSETS = {
    "app.js": "text/javascript",
    "form.js": "text/javascript",
    "style.css": "text/css",
    "index.html": "text/html",
}
# The page loads nothing from elsewhere and may not be framed (clickjacking "try it").
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class UiState:
    session: Any
    settings: Any
    token: str
    read_only: bool = False
    refresh: float = 3.0
    catalog: CatalogCache | None = None
    watches: set[web.WebSocketResponse] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.catalog is None:
            self.catalog = CatalogCache(self.session, self.settings)


STATE = web.AppKey("almanet_ui", UiState)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _token_ok(request: web.Request, token: str) -> bool:
    given = request.headers.get(TOKEN_HEADER) or request.query.get("token") or ""
    return hmac.compare_digest(given.encode(), token.encode())


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


@web.middleware
async def guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = request.app[STATE]
    if request.path.startswith("/static/"):
        return await handler(request)
    if not _token_ok(request, state.token):
        message = "this almanet ui needs its token: open the address that `almanet ui` printed (…/?token=…)"
        if request.path.startswith("/api/"):
            return _error(403, message)
        return web.Response(status=403, text=message + "\n", content_type="text/plain")
    if request.path.startswith("/api/") and not _same_origin(request):  # websockets and writes say where from
        return _error(403, f"requests from {request.headers.get('Origin')} are refused")
    return await handler(request)


async def page(request: web.Request) -> web.Response:
    text = (resources.files(__name__.rpartition(".")[0]) / "static" / "index.html").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="text/html", headers=_PAGE_HEADERS)


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _ASSETS or name == "index.html":
        raise web.HTTPNotFound()
    data = (resources.files(__name__.rpartition(".")[0]) / "static" / name).read_bytes()
    return web.Response(body=data, content_type=_ASSETS[name], headers={"Cache-Control": "no-cache"})


async def settings_view(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {
            "read_only": state.read_only,
            "refresh": state.refresh,
            "nsqd": list(state.settings.nsqd),
            "lookupd": list(state.settings.lookupd_http),
            "call_timeout": state.settings.call_timeout,
        }
    )


async def catalog(request: web.Request) -> web.Response:
    state = request.app[STATE]
    assert state.catalog is not None
    try:
        report = await state.catalog.get()
    except broker_error as exc:
        return _error(502, str(exc))
    return web.json_response(report, dumps=_dumps)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the request as application/json")
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"the request is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the request must be a JSON object")
    return body


def _timeout(body: dict[str, Any], default: float) -> float:
    value = body.get("timeout", default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("timeout must be a number of seconds")
    if not 0 < value <= MAX_CALL_TIMEOUT:
        raise ValueError(f"timeout must be more than 0 and at most {MAX_CALL_TIMEOUT:g} seconds")
    return float(value)


async def call(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.read_only:
        return _error(403, "this almanet ui is read-only (started with --read-only): calls are off")
    body = await _json_body(request)
    if not isinstance(body.get("uri"), str):
        return _error(400, 'give the procedure to call as "uri" (a string like net.example.greeting)')
    try:
        uri = check_uri(body["uri"])
        timeout = _timeout(body, state.settings.call_timeout)
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))
    started = time.perf_counter()
    outcome: dict[str, Any]
    try:
        result = await state.session.call(uri, body.get("payload"), timeout=timeout)
        outcome = {"ok": True, "payload": result.payload}
    except rpc_error as exc:
        outcome = {"ok": False, "error": {"name": exc.name, "args": list(exc.args)}}
    except TimeoutError as exc:
        reason = getattr(exc, "reason", None)  # almanet.timeout_error says why: not_served, queued, ...
        message = str(exc) if reason else f"no service answered {uri} within {timeout:g}s (is one serving it?)"
        outcome = {"ok": False, "error": {"name": "TimeoutError", "args": [message], "reason": reason}}
    except invalid_argument as exc:
        return _error(400, str(exc))
    except broker_error as exc:
        return _error(502, str(exc))
    outcome["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return web.json_response(outcome, dumps=_dumps)


async def produce(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.read_only:
        return _error(403, "this almanet ui is read-only (started with --read-only): publishing is off")
    body = await _json_body(request)
    if "message" not in body:
        return _error(400, 'give the message to publish as "message"')
    try:
        topic = check_name(body.get("topic"), "topic")
        await state.session.produce(topic, body["message"])
    except (ValueError, TypeError) as exc:  # invalid_argument is a ValueError
        return _error(400, str(exc))
    except broker_error as exc:
        return _error(502, str(exc))
    return web.json_response({"ok": True, "topic": topic})


async def watch(request: web.Request) -> web.StreamResponse:
    """A websocket of the topic's messages (one JSON object each), read on a channel of its own."""
    state = request.app[STATE]
    try:
        topic = check_name(request.query.get("topic", ""), "topic")
    except ValueError as exc:
        return _error(400, str(exc))
    if len(state.watches) >= MAX_WATCHES:
        return _error(429, f"at most {MAX_WATCHES} live views at once: close one")
    ws = web.WebSocketResponse(heartbeat=15.0)
    await ws.prepare(request)
    state.watches.add(ws)
    channel = f"almanet-ui-{uuid.uuid4().hex[:8]}#ephemeral"
    try:
        async with state.session.consume(topic, channel, max_in_flight=32) as subscription:
            await ws.send_str(_dumps({"event": "watching", "topic": topic, "channel": channel}))
            forwarding = asyncio.ensure_future(_forward(subscription, ws))
            listening = asyncio.ensure_future(_until_closed(ws))
            try:
                await asyncio.wait({forwarding, listening}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (forwarding, listening):
                    task.cancel()
                await asyncio.gather(forwarding, listening, return_exceptions=True)
            failure = None if forwarding.cancelled() else forwarding.exception()
            if failure is not None and not isinstance(failure, ConnectionError):  # the page gone: nothing to say
                logger.error("live view of %s failed", topic, exc_info=failure)
                raise failure
    except (broker_error, ValueError) as exc:
        if not ws.closed:
            await ws.send_str(_dumps({"event": "error", "error": str(exc)}))
    except Exception as exc:
        if not ws.closed:
            await ws.send_str(_dumps({"event": "error", "error": f"{type(exc).__name__}: {exc}"}))
        raise
    finally:
        state.watches.discard(ws)
        await ws.close()
    return ws


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for message in ws:  # the page sends nothing; this ends when it goes away
        if message.type == WSMsgType.ERROR:
            break


async def _forward(subscription: Any, ws: web.WebSocketResponse) -> None:
    async for message in subscription:
        if ws.closed:
            break
        record = message_line(message, as_json=True).decode()
        await ws.send_str('{"event":"message","message":' + record + "}")
        await message.commit()


def make_app(state: UiState) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app[STATE] = state
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", asset)
    app.router.add_get("/api/settings", settings_view)
    app.router.add_get("/api/catalog", catalog)
    app.router.add_post("/api/call", call)
    app.router.add_post("/api/produce", produce)
    app.router.add_get("/api/watch", watch)

    async def close_watches(app: web.Application) -> None:
        for ws in list(state.watches):
            await ws.close(code=1001, message=b"almanet ui is stopping")

    app.on_shutdown.append(close_watches)
    return app
