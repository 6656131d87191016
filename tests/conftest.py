"""Fixtures that run real NSQ daemons; they apply to every test folder below tests/.

Each fixture stops what it started even when the test fails; a session finalizer and an atexit
hook (in tests.support.nsqproc) kill anything left over. Tests that use one of these fixtures
are marked ``integration`` automatically, so ``-m "not integration"`` runs without daemons.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.nsqproc import (
    NsqdProcess,
    NsqlookupdProcess,
    kill_leftovers,
    new_name,
    start_nsqd,
    start_nsqlookupd,
)

_DAEMON_FIXTURES = frozenset({"nsqd", "fresh_nsqd", "nsqd_factory", "nsqlookupd"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _DAEMON_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_daemons() -> Iterator[None]:
    """Safety net: a daemon still alive at the end of the session is killed and reported."""
    yield
    leaked = kill_leftovers()
    if leaked:
        warnings.warn(f"killed NSQ daemons left running by tests: pids {leaked}", stacklevel=1)


@pytest.fixture(scope="module")
def nsqd() -> Iterator[NsqdProcess]:
    """One nsqd per test module: cheap to share, so tests must use unique topic names."""
    proc = start_nsqd()
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture
def fresh_nsqd() -> Iterator[NsqdProcess]:
    """An nsqd of the test's own, for tests that kill, restart or inspect all of its state."""
    proc = start_nsqd()
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture
def nsqd_factory() -> Iterator[Callable[..., NsqdProcess]]:
    """Start any number of nsqd (same keyword arguments as ``start_nsqd``); all stop at teardown."""
    # ExitStack runs every close even if one of them raises.
    with contextlib.ExitStack() as stack:

        def factory(**kwargs: Any) -> NsqdProcess:
            proc = start_nsqd(**kwargs)
            stack.callback(proc.close)
            return proc

        yield factory


@pytest.fixture
def nsqlookupd() -> Iterator[NsqlookupdProcess]:
    """A private nsqlookupd; pass ``nsqlookupd.tcp_address`` to ``nsqd_factory`` to register."""
    proc = start_nsqlookupd()
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture
def unique_name() -> Callable[..., str]:
    """``unique_name()`` -> "t_1a2b3c4d"; ``unique_name("ch")`` -> "ch_...". Valid NSQ names."""
    return new_name
