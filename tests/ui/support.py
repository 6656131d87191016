"""What the ui tests share: the address ``almanet ui`` prints, and a headless Chromium.

The browser is Debian's chromium driven by its chromium-driver (selenium). Nothing is downloaded:
both are the system's (``scripts/setup.sh`` installs them), and the flags keep Chromium off every
network but loopback.
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
    "--window-size=1280,1000",
)


def read_url(proc: subprocess.Popen[bytes]) -> str:
    """The page's address from the first line: the address itself (-o table), or a JSON record (piped)."""
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise AssertionError(f"almanet ui printed no address: {proc.stderr.read().decode() if proc.stderr else ''}")
    return json.loads(line)["url"] if line.startswith("{") else line


def find_browser() -> tuple[str, str] | None:
    browser = os.environ.get("ALMANET_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("ALMANET_TEST_CHROMEDRIVER") or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def require_browser() -> tuple[str, str]:
    """The browser and driver; in CI their absence fails the run (setup.sh must install them)."""
    found = find_browser()
    if found is None:
        message = (
            "chromium and chromedriver not found: apt-get install chromium chromium-driver (make setup does it as root)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@contextmanager
def chromium() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = require_browser()
    profile = tempfile.mkdtemp(prefix="almanet-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(executable_path=driver)
    session = webdriver.Chrome(service=service, options=options)
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)
