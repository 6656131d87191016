"""The page in a real headless Chromium, against a real nsqd, ``almanet serve`` and ``almanet ui``.

Set ALMANET_UI_SCREENSHOT=docs/almanet-ui.png (``make ui-screenshot``) to write the README's
screenshot; otherwise it goes to the test's temp dir and is only checked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiohttp", reason="the ui extra is not installed: pip install 'almanet[ui]'")
pytest.importorskip("playwright", reason="playwright is not installed: pip install -e '.[dev]'")

from playwright.sync_api import Locator, Page, expect

from almanet._wire.protocol import channel_name
from tests.cli.conftest import nsq_env, start, stop
from tests.support.nsqproc import REPO_ROOT, NsqdProcess, new_name, wait_until
from tests.ui.support import chromium, read_url, require_browser

ORDER = 'article.procedure[data-uri="uitest.order"]'
ANSWERED = re.compile(r"\b(ok|bad)\b")


@pytest.fixture(scope="module")
def env(nsqd: NsqdProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require_browser()  # before any process starts
    return nsq_env(tmp_path_factory.mktemp("ui-browser"), nsqd)


@pytest.fixture(scope="module")
def processes(env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``almanet ARGS`` processes; all are stopped (SIGINT, then checked) at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def launch(*args: str) -> subprocess.Popen[bytes]:
        proc = start(*args, env=env, cwd=REPO_ROOT)
        started.append(proc)
        return proc

    yield launch
    for proc in started:
        if proc.poll() is None:
            stop(proc, signal.SIGINT)


def subscribers(nsqd: NsqdProcess, uri: str) -> int:
    channel = nsqd.channel_stats(f"_rpc_.{uri}", channel_name("RPC"))
    return int(channel["client_count"]) if channel else 0


def serve_shop(processes: Callable[..., subprocess.Popen[bytes]], nsqd: NsqdProcess) -> subprocess.Popen[bytes]:
    """One more ``almanet serve`` of the shop, waited for until nsqd counts its subscription."""
    before = subscribers(nsqd, "uitest.order")
    proc = processes("serve", "tests.assets.ui_service:shop")

    def subscribed() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"almanet serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        return subscribers(nsqd, "uitest.order") > before and subscribers(nsqd, "uitest.ping") > before

    wait_until(subscribed, timeout=10, message="the shop service never subscribed")
    return proc


def publish(nsqd: NsqdProcess, topic: str, message: Any) -> None:
    """A message published through nsqd's HTTP /pub (no event loop needed in this thread)."""
    address = f"http://{nsqd.http_address}/pub?topic={urllib.parse.quote(topic)}"
    with urllib.request.urlopen(address, data=json.dumps(message).encode(), timeout=5) as response:
        assert response.read() == b"OK"


@pytest.fixture(scope="module")
def shop(processes: Callable[..., subprocess.Popen[bytes]], nsqd: NsqdProcess) -> subprocess.Popen[bytes]:
    return serve_shop(processes, nsqd)


@pytest.fixture(scope="module")
def url(processes: Callable[..., subprocess.Popen[bytes]], shop: subprocess.Popen[bytes]) -> str:
    return read_url(processes("ui", "--port", "0", "--refresh", "1"))


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium() as opened:
        yield opened


def open_page(page: Page, url: str) -> Locator:
    page.goto(url)
    card = page.locator(ORDER)
    expect(card).to_be_visible()
    return card


def pids(page: Page) -> list[str]:
    return page.locator("#instances tbody tr td:nth-child(4)").all_text_contents()


def fill_order(card: Locator, item: str, quantity: str) -> None:
    for name, value in {"item": item, "quantity": quantity, "price": "2.5", "address.city": "Kazan"}.items():
        card.locator(f'[name="{name}"]').fill(value)
    card.locator('[name="size"]').select_option(label="large")
    card.locator('[name="gift"]').check()
    if card.locator('[name="notes[0]"]').count() == 0:
        card.locator("fieldset.array button.add").click()
    card.locator('[name="notes[0]"]').fill("ring twice")


def call_and_read(card: Locator) -> tuple[str, str, str]:
    """Click Call; wait for the outcome; (kind, head, body)."""
    outcome = card.locator("form.try .outcome")
    card.locator("form.try button[type=submit]").click()  # the outcome says "calling…" at once
    expect(outcome).to_have_class(ANSWERED)
    kind = "ok" if "ok" in (outcome.get_attribute("class") or "").split() else "bad"
    body = outcome.locator("pre")
    return kind, outcome.locator(".head").inner_text(), body.inner_text() if body.count() else ""


def watch_and_publish(page: Page, topic: str, message: str) -> str:
    """Watch ``topic`` live, publish ``message`` from the page, see it arrive; the watch's channel."""
    watch = page.locator("#watch")
    watch.locator('[name="topic"]').fill(topic)
    watch.locator("button[type=submit]").click()
    panel = f'.watch[data-topic="{topic}"]'
    info = page.locator(f"{panel} .watch-head span")
    expect(info).to_have_text(re.compile(r"^on almanet-ui-"))
    channel = info.inner_text().removeprefix("on ")
    publish_form = page.locator("#publish")
    publish_form.locator('[name="topic"]').fill(topic)
    publish_form.locator('[name="message"]').fill(message)
    publish_form.locator("button[type=submit]").click()
    expect(publish_form.locator(".outcome .head")).to_have_text(f"published to {topic}")
    arrived = page.locator(f"{panel} li.message pre").first
    expect(arrived).to_be_visible()
    assert json.loads(arrived.inner_text()) == json.loads(message)
    return channel


# -- the tests ---------------------------------------------------------------------------------


def test_the_page_shows_the_procedure_its_schema_and_its_instance(
    page: Page, url: str, shop: subprocess.Popen[bytes], nsqd: NsqdProcess
) -> None:
    card = open_page(page, url)
    expect(card.locator(".description")).to_have_text('Place an order; the item "unicorn" is sold out.')
    assert card.locator(".tag").all_text_contents() == ["orders", "demo"]
    card.locator(".schemas summary").first.click()
    schema = json.loads(card.locator("pre.schema.payload").inner_text())
    assert schema["title"] == "Order" and "quantity" in schema["properties"]
    expect(card.locator("table.health tbody td")).to_have_text([nsqd.http_address, "1", "0", "0", "0"])
    assert pids(page) == [str(shop.pid)]
    # the form was built from the schema: one input per field, the enum as a choice
    assert card.locator('[name="size"] option').first.inner_text() == "small"
    assert card.locator('[name="quantity"]').get_attribute("type") == "number"
    assert card.locator('[name="gift"]').get_attribute("type") == "checkbox"


def test_try_it_shows_the_reply_the_validation_error_and_the_remote_error(page: Page, url: str) -> None:
    card = open_page(page, url)
    fill_order(card, "tea", "4")
    kind, head, body = call_and_read(card)
    assert kind == "ok" and head.startswith("reply in ") and head.endswith(" ms"), head
    # every kind of field arrived: string, integer, number, boolean, enum, nested object, list
    assert json.loads(body) == {
        "item": "tea",
        "total": 10.0,
        "gift": True,
        "size": "large",
        "city": "Kazan",
        "notes": ["ring twice"],
    }

    fill_order(card, "tea", "0")
    kind, head, body = call_and_read(card)
    assert kind == "bad" and head.startswith("ValidationError after "), head
    assert "payload.quantity: Input should be greater than or equal to 1" in body

    fill_order(card, "unicorn", "2")
    kind, head, body = call_and_read(card)
    assert kind == "bad" and head.startswith("sold_out after "), head
    assert body.splitlines() == ["unicorn", "2"]


def test_raw_json_mode_sends_what_is_written(page: Page, url: str) -> None:
    card = open_page(page, url)
    card.locator("input.raw-toggle").check()
    card.locator("textarea.raw").fill('{"item": "tea"}')
    kind, head, body = call_and_read(card)
    assert kind == "bad" and head.startswith("ValidationError"), head
    assert "payload.quantity: Field required" in body


def test_a_second_instance_appears_and_goes(
    page: Page, url: str, processes: Callable[..., subprocess.Popen[bytes]], nsqd: NsqdProcess
) -> None:
    open_page(page, url)
    instances = page.locator(f"{ORDER} .summary .instances")
    expect(instances).to_have_text("1 instance")
    second = serve_shop(processes, nsqd)
    expect(instances).to_have_text("2 instances")
    assert str(second.pid) in pids(page)
    code, _, err = stop(second, signal.SIGINT)
    assert code == 0, err
    expect(instances).to_have_text("1 instance")


def test_publish_and_watch_live_leaves_nothing_in_nsqd(page: Page, url: str, nsqd: NsqdProcess) -> None:
    open_page(page, url)
    topic = new_name("uiwatch")
    channel = watch_and_publish(page, topic, '{"hello": "browser"}')
    assert channel.endswith("#ephemeral") and channel in nsqd.topics()[topic]
    page.goto("about:blank")  # the page closes: its websocket, then its channel go
    wait_until(lambda: channel not in nsqd.topics()[topic], timeout=10, message=f"{channel} left behind in nsqd")


def test_unserved_rpc_topics_are_listed(page: Page, url: str, nsqd: NsqdProcess) -> None:
    publish(nsqd, "_rpc_.uitest.retired", {"left": "behind"})
    open_page(page, url)
    cells = page.locator('section#unserved-section tr[data-uri="uitest.retired"] td')
    expect(cells).to_have_text(["uitest.retired", nsqd.http_address, "1"])


def test_bad_topic_names_are_refused_on_the_page(page: Page, url: str) -> None:
    open_page(page, url)
    watch = page.locator("#watch")
    watch.locator('[name="topic"]').fill("no spaces")
    watch.locator("button[type=submit]").click()
    expect(page.locator('.watch[data-topic="no spaces"] .watch-head span')).to_have_text(re.compile("^refused"))
    publish_form = page.locator("#publish")
    publish_form.locator('[name="topic"]').fill("no spaces")
    publish_form.locator("button[type=submit]").click()
    outcome = publish_form.locator(".outcome")
    expect(outcome).to_have_class(re.compile(r"\bbad\b"))
    expect(outcome.locator(".head")).to_have_text("not published")
    expect(outcome.locator("pre")).to_contain_text("topic name 'no spaces' is invalid")


def test_requests_without_the_token_are_refused(page: Page, url: str) -> None:
    base = url.split("/?token=")[0]
    response = page.goto(base + "/")
    assert response is not None and response.status == 403
    expect(page.locator("body")).to_contain_text("needs its token")
    for path in ("/api/catalog", "/?token=wrong"):
        try:
            urllib.request.urlopen(base + path, timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
        else:
            raise AssertionError(f"{path} answered without the token")


def test_read_only_page_has_no_try_it(
    page: Page, processes: Callable[..., subprocess.Popen[bytes]], shop: subprocess.Popen[bytes]
) -> None:
    read_only = read_url(processes("ui", "--port", "0", "--read-only", "--refresh", "1"))
    card = open_page(page, read_only)
    expect(page.locator("#mode")).to_be_visible()
    assert card.locator("form.try").count() == 0
    assert page.locator("#publish").count() == 0
    expect(page.locator("#watch")).to_be_visible()  # watching only reads


def test_screenshot(page: Page, url: str, tmp_path: Path) -> None:
    card = open_page(page, url)
    fill_order(card, "green tea", "3")
    kind, _, _ = call_and_read(card)
    assert kind == "ok"
    watch_and_publish(page, new_name("orders"), '{"order": 17, "item": "green tea"}')
    card.locator(".schemas details").first.evaluate("details => { details.open = true; }")
    page.evaluate("window.scrollTo(0, 0)")
    target = Path(os.environ.get("ALMANET_UI_SCREENSHOT") or tmp_path / "almanet-ui.png")
    page.screenshot(path=str(target), full_page=True)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
