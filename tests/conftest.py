"""almanet's own tests run on the fixtures of its pytest plugin (almanet/testing/plugin.py).

The plugin gives ``nsqd`` (one per module), ``fresh_nsqd``, ``nsqd_factory``, ``nsqlookupd``,
``nsq_cluster``, ``served``, ``session``, ``expect_call``/``expect_message`` and the leftover-daemon
safety net. Here: the repo's own NSQ build is pinned (``make setup`` puts v1.3.0 in .tools/bin,
which must win over any other nsqd on PATH), and tests that start daemons are marked
``integration``, so ``-m "not integration"`` runs without any.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from tests.support.nsqproc import REPO_ROOT, new_name

# A suite started in the background of a script (`make test &`, nohup) inherits SIGINT ignored, and
# an ignored signal stays ignored across exec: every process a test starts would then shrug off the
# Ctrl-C the test sends it (three tests hung that way under `nohup`). A Python-level handler here
# is reset to the default on exec, so children get the SIGINT a user's terminal gives them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
for _tool in ("nsqd", "nsqlookupd", "nsq_tail", "to_nsq"):
    if (_TOOLS_BIN / _tool).is_file():
        os.environ.setdefault(f"ALMANET_{_tool.upper()}_BIN", str(_TOOLS_BIN / _tool))

_DAEMON_FIXTURES = frozenset(
    {
        "nsqd",
        "fresh_nsqd",
        "nsqd_factory",
        "nsqlookupd",
        "nsq_cluster",
        "almanet_nsqd",
        "served",
        "session",
        "expect_call",
        "expect_message",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _DAEMON_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def unique_name() -> Callable[..., str]:
    """``unique_name()`` -> "t_1a2b3c4d"; ``unique_name("ch")`` -> "ch_...". Valid NSQ names."""
    return new_name
