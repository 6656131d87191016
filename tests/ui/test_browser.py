"""The page in a real headless Chromium, against a real nsqd, ``almanet serve`` and ``almanet ui``.

Set ALMANET_UI_SCREENSHOT=docs/almanet-ui.png (``make ui-screenshot``) to write the README's
screenshot; otherwise it goes to the test's temp dir and is only checked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiohttp", reason="the ui extra is not installed: pip install 'almanet[ui]'")
pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[dev]'")

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.cli.conftest import call_once, nsq_env, start, stop
from tests.support.nsqproc import REPO_ROOT, NsqdProcess, new_name, wait_until
from tests.ui.support import chromium, read_url, require_browser

ORDER = 'article.procedure[data-uri="uitest.order"]'
WAIT = 15.0  # the page refreshes every second; discovery takes one


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


def serve_shop(processes: Callable[..., subprocess.Popen[bytes]], env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = processes("serve", "tests.assets.ui_service:shop")

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"almanet serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            return call_once((env["ALMANET_NSQD"],), "uitest.ping") == "pong"
        except TimeoutError:
            return False

    wait_until(answers, timeout=10, message="the shop service did not answer")
    return proc


@pytest.fixture(scope="module")
def shop(processes: Callable[..., subprocess.Popen[bytes]], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return serve_shop(processes, env)


@pytest.fixture(scope="module")
def url(processes: Callable[..., subprocess.Popen[bytes]], shop: subprocess.Popen[bytes]) -> str:
    return read_url(processes("ui", "--port", "0", "--refresh", "1"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        driver.set_window_size(1400, 1000)
        yield driver


def wait(driver: Any, condition: Callable[[Any], Any], message: str) -> Any:
    # stale: the page redraws parts of itself at each refresh, between a find and a read
    waiting = WebDriverWait(driver, WAIT, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,))
    return waiting.until(condition, message)


def read(driver: Any, reader: Callable[[], Any]) -> Any:
    """``reader()``, again if the page redrew what it was reading (a refresh came in between)."""
    return wait(driver, lambda d: [reader()], "the page never held still")[0]


def open_page(driver: Any, url: str) -> Any:
    driver.get(url)
    return wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ORDER), "uitest.order never showed")[0]


def pids(driver: Any) -> list[str]:
    return [
        r.find_elements(By.TAG_NAME, "td")[3].text for r in driver.find_elements(By.CSS_SELECTOR, "#instances tbody tr")
    ]


def fill_order(card: Any, item: str, quantity: str) -> None:
    fields = {"item": item, "quantity": quantity, "price": "2.5", "address.city": "Kazan"}
    for name, value in fields.items():
        box = card.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)
    Select(card.find_element(By.NAME, "size")).select_by_visible_text("large")
    gift = card.find_element(By.NAME, "gift")
    if not gift.is_selected():
        gift.click()
    if not card.find_elements(By.NAME, "notes[0]"):
        card.find_element(By.CSS_SELECTOR, "fieldset.array button.add").click()
    note = card.find_element(By.NAME, "notes[0]")
    note.clear()
    note.send_keys("ring twice")


def call_and_read(driver: Any, card: Any) -> tuple[str, str, str]:
    """Click Call; wait for the outcome; (kind, head, body)."""
    outcome = card.find_element(By.CSS_SELECTOR, "form.try .outcome")
    card.find_element(By.CSS_SELECTOR, "form.try button[type=submit]").click()
    wait(driver, lambda d: {"ok", "bad"} & set(outcome.get_attribute("class").split()), "no outcome")
    kind = "ok" if "ok" in outcome.get_attribute("class").split() else "bad"
    body = outcome.find_elements(By.TAG_NAME, "pre")
    return kind, outcome.find_element(By.CSS_SELECTOR, ".head").text, body[0].text if body else ""


def watch_and_publish(driver: Any, topic: str, message: str) -> str:
    """Watch ``topic`` live, publish ``message`` from the page, see it arrive; the watch's channel."""
    watch = driver.find_element(By.ID, "watch")
    watch.find_element(By.NAME, "topic").send_keys(topic)
    watch.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    panel = f'.watch[data-topic="{topic}"]'
    info = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"{panel} .watch-head span"), "no watch panel")
    wait(driver, lambda d: info.text.startswith("on almanet-ui-"), "the watch never subscribed")
    channel = info.text.removeprefix("on ")
    publish = driver.find_element(By.ID, "publish")
    publish.find_element(By.NAME, "topic").send_keys(topic)
    box = publish.find_element(By.NAME, "message")
    box.clear()
    box.send_keys(message)
    publish.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: publish.find_element(By.CSS_SELECTOR, ".outcome .head").text == f"published to {topic}", "")
    arrived = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"{panel} li.message pre"), "nothing arrived")
    assert json.loads(arrived[0].text) == json.loads(message)
    return channel


def produce_once(addresses: tuple[str, ...], topic: str, message: Any) -> None:
    import asyncio

    import almanet

    async def main() -> None:
        async with almanet.new_session(*addresses) as session:
            await session.produce(topic, message)

    asyncio.run(main())


# -- the tests ---------------------------------------------------------------------------------


def test_the_page_shows_the_procedure_its_schema_and_its_instance(
    browser: Any, url: str, shop: subprocess.Popen[bytes], nsqd: NsqdProcess
) -> None:
    card = open_page(browser, url)
    assert card.find_element(By.CSS_SELECTOR, ".description").text == 'Place an order; the item "unicorn" is sold out.'
    assert [t.text for t in card.find_elements(By.CSS_SELECTOR, ".tag")] == ["orders", "demo"]
    card.find_element(By.CSS_SELECTOR, ".schemas summary").click()
    schema = json.loads(card.find_element(By.CSS_SELECTOR, "pre.schema.payload").text)
    assert schema["title"] == "Order" and "quantity" in schema["properties"]
    health = read(browser, lambda: [c.text for c in card.find_elements(By.CSS_SELECTOR, "table.health tbody td")])
    assert health == [nsqd.http_address, "1", "0", "0", "0"]
    assert read(browser, lambda: pids(browser)) == [str(shop.pid)]
    # the form was built from the schema: one input per field, the enum as a choice
    assert Select(card.find_element(By.NAME, "size")).options[0].text == "small"
    assert card.find_element(By.NAME, "quantity").get_attribute("type") == "number"
    assert card.find_element(By.NAME, "gift").get_attribute("type") == "checkbox"


def test_try_it_shows_the_reply_the_validation_error_and_the_remote_error(browser: Any, url: str) -> None:
    card = open_page(browser, url)
    fill_order(card, "tea", "4")
    kind, head, body = call_and_read(browser, card)
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
    kind, head, body = call_and_read(browser, card)
    assert kind == "bad" and head.startswith("ValidationError after "), head
    assert "payload.quantity: Input should be greater than or equal to 1" in body

    fill_order(card, "unicorn", "2")
    kind, head, body = call_and_read(browser, card)
    assert kind == "bad" and head.startswith("sold_out after "), head
    assert body.splitlines() == ["unicorn", "2"]


def test_raw_json_mode_sends_what_is_written(browser: Any, url: str) -> None:
    card = open_page(browser, url)
    card.find_element(By.CSS_SELECTOR, "input.raw-toggle").click()
    raw = card.find_element(By.CSS_SELECTOR, "textarea.raw")
    raw.clear()
    raw.send_keys('{"item": "tea"}')
    kind, head, body = call_and_read(browser, card)
    assert kind == "bad" and head.startswith("ValidationError"), head
    assert "payload.quantity: Field required" in body


def test_a_second_instance_appears_and_goes(
    browser: Any, url: str, processes: Callable[..., subprocess.Popen[bytes]], env: dict[str, str]
) -> None:
    open_page(browser, url)

    def instances() -> str:  # the summary is redrawn at each refresh: read it afresh
        return browser.find_element(By.CSS_SELECTOR, f"{ORDER} .summary .instances").text

    assert instances() == "1 instance"
    second = serve_shop(processes, env)
    wait(browser, lambda d: instances() == "2 instances", "the second instance never showed")
    assert str(second.pid) in read(browser, lambda: pids(browser))
    code, _, err = stop(second, signal.SIGINT)
    assert code == 0, err
    wait(browser, lambda d: instances() == "1 instance", "the stopped instance never went away")


def test_publish_and_watch_live_leaves_nothing_in_nsqd(browser: Any, url: str, nsqd: NsqdProcess) -> None:
    open_page(browser, url)
    topic = new_name("uiwatch")
    channel = watch_and_publish(browser, topic, '{"hello": "browser"}')
    assert channel.endswith("#ephemeral") and channel in nsqd.topics()[topic]
    browser.get("about:blank")  # the page closes: its websocket, then its channel go
    wait_until(lambda: channel not in nsqd.topics()[topic], timeout=10, message=f"{channel} left behind in nsqd")


def test_bad_topic_names_are_refused_on_the_page(browser: Any, url: str) -> None:
    open_page(browser, url)
    watch = browser.find_element(By.ID, "watch")
    watch.find_element(By.NAME, "topic").send_keys("no spaces")
    watch.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    info = '.watch[data-topic="no spaces"] .watch-head span'
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, info).text.startswith("refused"), "no refusal shown")
    publish = browser.find_element(By.ID, "publish")
    publish.find_element(By.NAME, "topic").send_keys("no spaces")
    publish.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    outcome = publish.find_element(By.CSS_SELECTOR, ".outcome")
    wait(browser, lambda d: "bad" in outcome.get_attribute("class").split(), "no publishing error shown")
    assert outcome.find_element(By.CSS_SELECTOR, ".head").text == "not published"
    assert "topic name 'no spaces' is invalid" in outcome.find_element(By.TAG_NAME, "pre").text


def test_requests_without_the_token_are_refused(browser: Any, url: str) -> None:
    base = url.split("/?token=")[0]
    browser.get(base + "/")
    assert "needs its token" in browser.find_element(By.TAG_NAME, "body").text
    for path in ("/api/catalog", "/?token=wrong"):
        try:
            urllib.request.urlopen(base + path, timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
        else:
            raise AssertionError(f"{path} answered without the token")


def test_read_only_page_has_no_try_it(
    browser: Any, processes: Callable[..., subprocess.Popen[bytes]], shop: subprocess.Popen[bytes]
) -> None:
    read_only = read_url(processes("ui", "--port", "0", "--read-only", "--refresh", "1"))
    card = open_page(browser, read_only)
    assert browser.find_element(By.ID, "mode").is_displayed()
    assert not card.find_elements(By.CSS_SELECTOR, "form.try")
    assert not browser.find_elements(By.ID, "publish")
    assert browser.find_elements(By.ID, "watch")  # watching only reads


def test_unserved_rpc_topics_are_listed(browser: Any, url: str, env: dict[str, str]) -> None:
    produce_once((env["ALMANET_NSQD"],), "_rpc_.uitest.retired", {"left": "behind"})
    open_page(browser, url)
    row = 'section#unserved-section tr[data-uri="uitest.retired"]'
    cells = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} td"), "the unserved topic never showed")
    assert [c.text for c in cells] == ["uitest.retired", env["ALMANET_NSQD_HTTP"], "1"]


def test_screenshot(browser: Any, url: str, tmp_path: Path) -> None:
    card = open_page(browser, url)
    fill_order(card, "green tea", "3")
    kind, _, _ = call_and_read(browser, card)
    assert kind == "ok"
    watch_and_publish(browser, new_name("orders"), '{"order": 17, "item": "green tea"}')
    browser.execute_script("arguments[0].open = true", card.find_element(By.CSS_SELECTOR, ".schemas details"))
    browser.execute_script("window.scrollTo(0, 0)")
    for _ in range(5):  # grow the window until the whole page fits (the outer size includes a frame)
        inner, needed = browser.execute_script("return [window.innerHeight, document.documentElement.scrollHeight]")
        if inner >= needed or needed > 4000:
            break
        browser.set_window_size(1400, browser.get_window_size()["height"] + needed - inner)
    target = Path(os.environ.get("ALMANET_UI_SCREENSHOT") or tmp_path / "almanet-ui.png")
    assert browser.save_screenshot(str(target))
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    browser.set_window_size(1400, 1000)
