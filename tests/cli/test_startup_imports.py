"""Running a command must not import what it does not need (start-up time is a feature)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.nsqproc import free_port

PROBE = """
import sys
sys.argv = ["almanet", "call", "net.example.greeting", '"Aidar"', "--timeout", "1", "--nsqd", sys.argv[1]]
import almanet.cli
try:
    almanet.cli.main()
except SystemExit as exit:
    code = exit.code
heavy = ("pydantic", "gnsq", "gevent", "urllib.request", "http.client", "rich.json",
         "aiohttp", "almanet.cli.ui.server", "almanet.cli.ui.catalog",  # the ui: only for `almanet ui`
         "prometheus_client", "watchfiles", "almanet._serving.metrics", "almanet._serving.ops")  # serve --http
heavy = [m for m in heavy if m in sys.modules]
print(code, heavy)
"""


def test_call_imports_nothing_heavy() -> None:
    # nothing listens on that port: the command fails fast with exit 4, after doing its imports
    address = f"127.0.0.1:{free_port()}"
    done = subprocess.run([sys.executable, "-c", PROBE, address], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "4 []", (done.stdout, done.stderr[-500:])


def test_serve_without_http_imports_no_metrics() -> None:
    """``almanet serve`` without --http: neither prometheus-client nor the endpoint is imported."""
    code = (
        "import sys, almanet.cli.serve, almanet._serving.process, almanet._serving.service;"
        "print(sorted(m for m in sys.modules if m.startswith(('prometheus_client', 'watchfiles',"
        " 'almanet._serving.metrics', 'almanet._serving.ops', 'almanet._serving.workers'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "[]", done.stderr[-500:]
