"""The HTTP endpoints of ``almanet ui``, through aiohttp's test client, against a real nsqd and service."""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import AsyncIterator, Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiohttp", reason="the ui extra is not installed: pip install 'almanet[ui]'")

from aiohttp.test_utils import TestClient, TestServer

from almanet._settings.config import load_settings
from almanet.cli._common import open_session
from almanet.cli.ui import is_loopback, page_url
from almanet.cli.ui.server import TOKEN_HEADER, UiState, make_app
from tests.assets.ui_service import new_shop
from tests.integration._aio import joined, run, serving, wait_for_async
from tests.support.nsqproc import REPO_ROOT, NsqdProcess, free_port

TOKEN = "test-token-1234"
AUTH = {TOKEN_HEADER: TOKEN}


@contextlib.asynccontextmanager
async def ui_client(
    nsqd: NsqdProcess, tmp_path: Path, *, read_only: bool = False, more_http: tuple[str, ...] = ()
) -> AsyncIterator[TestClient]:
    settings = load_settings(
        env={},
        cwd=tmp_path,
        overrides={
            "nsq.nsqd": [nsqd.tcp_address],
            "nsq.nsqd_http": [nsqd.http_address, *more_http],
            "timeouts.call": 2.0,
        },
    )
    async with await open_session(settings) as session:  # as `almanet ui` opens it (nsqd_http, fail-fast)
        state = UiState(session, settings, TOKEN, read_only=read_only)
        async with TestClient(TestServer(make_app(state), host="127.0.0.1")) as client:
            yield client


async def post(client: TestClient, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    response = await client.post(path, json=body, headers={**AUTH, **headers})
    return response.status, await response.json()


# -- the token ---------------------------------------------------------------------------------


def test_requests_without_the_token_are_refused(nsqd: NsqdProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with ui_client(nsqd, tmp_path) as client:
            for path in ("/", "/api/catalog", "/api/settings", "/api/watch?topic=t"):
                for headers in ({}, {TOKEN_HEADER: "wrong"}):
                    response = await client.get(path, headers=headers)
                    assert response.status == 403, path
                    assert "needs its token" in await response.text()
            response = await client.post("/api/call", json={"uri": "uitest.ping"})
            assert response.status == 403
            # the page with the token in its address, and the public assets without
            assert (await client.get(f"/?token={TOKEN}")).status == 200
            page = await client.get(f"/?token={TOKEN}")
            assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
            assert (await client.get("/static/app.js")).status == 200
            assert (await client.get("/static/nothing.js")).status == 404
            assert (await client.get("/api/settings", headers=AUTH)).status == 200

    run(scenario())


def test_writes_from_another_origin_are_refused(nsqd: NsqdProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with ui_client(nsqd, tmp_path) as client:
            status, body = await post(client, "/api/produce", {"topic": "t", "message": 1}, Origin="http://evil.test")
            assert status == 403 and "evil.test" in body["error"]
            response = await client.get(f"/api/watch?topic=t&token={TOKEN}", headers={"Origin": "http://evil.test"})
            assert response.status == 403
            status, body = await post(
                client, "/api/produce", {"topic": "t", "message": 1}, Origin=str(client.make_url("")).rstrip("/")
            )
            assert status == 200, body

    run(scenario())


# -- catalog -----------------------------------------------------------------------------------


def test_catalog_shows_instances_procedures_health_and_unserved_topics(
    nsqd: NsqdProcess, tmp_path: Path, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("cat")
    ghost = f"_rpc_.{unique_name('ghost')}.gone"

    async def scenario() -> None:
        async with serving(new_shop(prepath, nsqd.tcp_address)), ui_client(nsqd, tmp_path) as client:
            async with joined(nsqd.tcp_address) as other:
                await other.produce(ghost, {"stale": True})  # an invocation nobody will read
            response = await client.get("/api/catalog", headers=AUTH)
            assert response.status == 200
            report = await response.json()
        mine = [i for i in report["instances"] if i["prepath"] == prepath]
        assert len(mine) == 1
        assert mine[0]["pid"] > 0 and mine[0]["host"] and mine[0]["uptime"] >= 0
        order = next(p for p in report["procedures"] if p["uri"] == f"{prepath}.order")
        assert order["description"] == 'Place an order; the item "unicorn" is sold out.'
        assert order["tags"] == ["orders", "demo"]
        assert set(order["payload_json_schema"]["properties"]) >= {"item", "quantity", "size", "address", "notes"}
        assert order["return_json_schema"]["type"] == "object"
        assert order["nsqd"] == [
            {"nsqd": nsqd.http_address, "topic": True, "subscribers": 1, "depth": 0, "in_flight": 0, "stale": 0}
        ]
        unserved = next(p for p in report["unserved"] if p["uri"] == ghost.removeprefix("_rpc_."))
        assert unserved["instances"] == [] and unserved["depth"] == 1 and unserved["stale"] == 1
        assert not any(p["uri"] == unserved["uri"] for p in report["procedures"])

    run(scenario())


def test_catalog_names_an_nsqd_it_cannot_read(nsqd: NsqdProcess, tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"

    async def scenario() -> dict[str, Any]:
        async with ui_client(nsqd, tmp_path, more_http=(closed,)) as client:
            response = await client.get("/api/catalog", headers=AUTH)
            assert response.status == 200
            return await response.json()

    report = run(scenario())
    assert len(report["errors"]) == 1 and closed in report["errors"][0]
    assert report["nsqd"] == [nsqd.http_address]


# -- call --------------------------------------------------------------------------------------

VALID = {"item": "tea", "quantity": 3, "price": 1.5, "size": "small", "address": {"city": "Kazan"}}


def test_call_returns_the_reply_the_remote_error_or_the_validation_error(
    nsqd: NsqdProcess, tmp_path: Path, unique_name: Callable[..., str]
) -> None:
    prepath = unique_name("call")

    async def scenario() -> None:
        async with serving(new_shop(prepath, nsqd.tcp_address)), ui_client(nsqd, tmp_path) as client:
            status, body = await post(client, "/api/call", {"uri": f"{prepath}.order", "payload": VALID})
            assert status == 200 and body["ok"] is True
            assert body["payload"] == {
                "item": "tea",
                "total": 4.5,
                "gift": False,
                "size": "small",
                "city": "Kazan",
                "notes": [],
            }
            assert body["elapsed_ms"] > 0
            status, body = await post(
                client, "/api/call", {"uri": f"{prepath}.order", "payload": {**VALID, "item": "unicorn"}}
            )
            assert status == 200 and body["ok"] is False
            assert body["error"] == {"name": "sold_out", "args": ["unicorn", 3]}
            status, body = await post(
                client, "/api/call", {"uri": f"{prepath}.order", "payload": {**VALID, "quantity": 0}}
            )
            assert body["error"]["name"] == "ValidationError"
            assert "payload.quantity: Input should be greater than or equal to 1" in body["error"]["args"][0]
            # nothing serves it: the session says so (fail-fast, with the reason) well before 30 s
            status, body = await post(client, "/api/call", {"uri": f"{prepath}.nobody", "timeout": 30})
            assert status == 200 and body["error"]["name"] == "TimeoutError"
            assert body["error"]["reason"] == "not_served", body
            assert f"{prepath}.nobody" in body["error"]["args"][0] and body["elapsed_ms"] < 30_000

    run(scenario())


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"uri": "not a uri"}, 400, "not a uri"),
        ({"payload": 1}, 400, 'as "uri"'),
        ({"uri": "a.b", "timeout": -1}, 400, "timeout must be more than 0"),
        ({"uri": "a.b", "timeout": "soon"}, 400, "timeout must be a number"),
        ({"uri": "a.b", "timeout": 10_000}, 400, "at most 300"),
    ],
)
def test_call_rejects_bad_requests(nsqd: NsqdProcess, tmp_path: Path, body: Any, status: int, message: str) -> None:
    async def scenario() -> None:
        async with ui_client(nsqd, tmp_path) as client:
            got, answer = await post(client, "/api/call", body)
            assert got == status
            assert message in answer["error"]

    run(scenario())


def test_bodies_that_are_not_json_objects_are_rejected(nsqd: NsqdProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with ui_client(nsqd, tmp_path) as client:
            headers = {**AUTH, "Content-Type": "application/json"}
            response = await client.post("/api/call", data=b"{not json", headers=headers)
            assert response.status == 400 and "not valid JSON" in await response.text()
            response = await client.post("/api/call", data=b"[1]", headers=headers)
            assert response.status == 400 and "JSON object" in await response.text()
            response = await client.post("/api/call", data=b"{}", headers={**AUTH, "Content-Type": "text/plain"})
            assert response.status == 415

    run(scenario())


def test_read_only_refuses_calls_and_publishing_but_shows_the_catalog(nsqd: NsqdProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with ui_client(nsqd, tmp_path, read_only=True) as client:
            status, body = await post(client, "/api/call", {"uri": "uitest.ping"})
            assert status == 403 and "--read-only" in body["error"]
            status, body = await post(client, "/api/produce", {"topic": "t", "message": 1})
            assert status == 403 and "--read-only" in body["error"]
            settings = await (await client.get("/api/settings", headers=AUTH)).json()
            assert settings["read_only"] is True
            assert (await client.get("/api/catalog", headers=AUTH)).status == 200

    run(scenario())


# -- produce and watch -------------------------------------------------------------------------


def test_produce_publishes_and_rejects_bad_topics(
    nsqd: NsqdProcess, tmp_path: Path, unique_name: Callable[..., str]
) -> None:
    topic = unique_name("pub")

    async def scenario() -> None:
        async with ui_client(nsqd, tmp_path) as client, joined(nsqd.tcp_address) as reader:
            async with reader.consume(topic, "check#ephemeral") as subscription:
                status, body = await post(client, "/api/produce", {"topic": topic, "message": {"n": 1}})
                assert (status, body) == (200, {"ok": True, "topic": topic})
                message = await anext(aiter(subscription))
                assert message.body == {"n": 1}
                await message.commit()
            status, body = await post(client, "/api/produce", {"topic": "bad topic!", "message": 1})
            assert status == 400 and "invalid" in body["error"]
            status, body = await post(client, "/api/produce", {"topic": topic})
            assert status == 400 and '"message"' in body["error"]

    run(scenario())


def test_watch_streams_messages_and_leaves_nothing_in_nsqd(
    nsqd: NsqdProcess, tmp_path: Path, unique_name: Callable[..., str]
) -> None:
    topic = unique_name("watch")

    async def scenario() -> None:
        async with ui_client(nsqd, tmp_path) as client, joined(nsqd.tcp_address) as producer:
            await producer.produce(topic, "before")  # held by the topic until its first channel comes
            ws = await client.ws_connect(f"/api/watch?topic={topic}&token={TOKEN}")
            hello = await ws.receive_json(timeout=5)
            assert hello["event"] == "watching" and hello["channel"].endswith("#ephemeral")
            assert hello["channel"] in nsqd.topics()[topic]
            event = await ws.receive_json(timeout=5)
            assert event["event"] == "message" and event["message"]["body"] == "before"
            await producer.produce(topic, {"live": 1})
            event = await ws.receive_json(timeout=5)
            assert event["event"] == "message" and event["message"]["body"] == {"live": 1}
            assert event["message"]["attempts"] == 1
            await ws.close()
            await wait_for_async(
                lambda: hello["channel"] not in nsqd.topics()[topic], 5, message="ephemeral channel left behind"
            )
            bad = await client.get("/api/watch?topic=no%20spaces", headers=AUTH)
            assert bad.status == 400 and "invalid" in (await bad.json())["error"]

    run(scenario())


# -- the command's pieces and the package ------------------------------------------------------


def test_loopback_and_page_address() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.0.2.7", "ui.example"))
    assert page_url("::1", 8765, "t") == "http://[::1]:8765/?token=t"
    assert page_url("127.0.0.1", 1, "abc") == "http://127.0.0.1:1/?token=abc"


def test_every_page_asset_goes_into_the_wheel() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["almanet.cli.ui"]
    static = REPO_ROOT / "almanet" / "cli" / "ui" / "static"
    assets = [p.relative_to(static.parent).as_posix() for p in static.iterdir()]
    assert {"static/index.html", "static/app.js", "static/style.css"} <= set(assets)
    assert all(any(fnmatch(a, pattern) for pattern in patterns) for a in assets)
