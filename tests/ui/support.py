"""What the ui tests share: the address ``almanet ui`` prints, and a headless Chromium.

The browser is Debian's chromium, driven by playwright (the PyPI package, its own browsers never
downloaded: ``executable_path`` is the system's chromium, which ``scripts/setup.sh`` installs). The
flags and a new, empty profile keep Chromium off every network but loopback. (Not selenium: it
brings trio, and anyio's pytest plugin then runs every anyio test on trio too.)

playwright's sync API keeps an event loop running in the test's thread while the browser is open,
so these tests do not ``asyncio.run`` anything themselves: they talk to nsqd over HTTP and wait on
its /stats.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
TIMEOUT_MS = 15_000  # the page refreshes every second; one discovery takes one


def read_url(proc: subprocess.Popen[bytes]) -> str:
    """The page's address from the first line: the address itself (-o table), or a JSON record (piped)."""
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise AssertionError(f"almanet ui printed no address: {proc.stderr.read().decode() if proc.stderr else ''}")
    return json.loads(line)["url"] if line.startswith("{") else line


def find_browser() -> str | None:
    return os.environ.get("ALMANET_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser() -> str:
    """The browser; in CI its absence fails the run (setup.sh must install it)."""
    found = find_browser()
    if found is None:
        message = "chromium not found: apt-get install chromium (make setup does it as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@contextmanager
def chromium() -> Iterator[Any]:
    """A page of a headless Chromium with a new, empty profile, driven by playwright (sync API)."""
    from playwright.sync_api import expect, sync_playwright

    browser = require_browser()
    profile = tempfile.mkdtemp(prefix="almanet-ui-chromium-")
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=browser,
                headless=True,
                args=list(FLAGS),
                viewport={"width": 1400, "height": 1000},
            )
            context.set_default_timeout(TIMEOUT_MS)
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
