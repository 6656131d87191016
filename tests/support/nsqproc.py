"""The NSQ daemons for almanet's own tests: almanet.testing's, under the names the tests use.

One implementation: the process management lives in ``almanet/testing/`` (users' tests get the
same through the pytest plugin); this module only adds where the repo is.
"""

from __future__ import annotations

from pathlib import Path

from almanet.testing._processes import (
    NsqdProcess,
    NsqlookupdProcess,
    kill_leftovers,
    start_nsqd,
    start_nsqlookupd,
)
from almanet.testing._tools import NsqProcessError
from almanet.testing._tools import find_tool as tool_path
from almanet.testing._util import free_port, new_name, wait_until

__all__ = [
    "REPO_ROOT",
    "NsqProcessError",
    "NsqdProcess",
    "NsqlookupdProcess",
    "free_port",
    "kill_leftovers",
    "new_name",
    "start_nsqd",
    "start_nsqlookupd",
    "tool_path",
    "wait_until",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
