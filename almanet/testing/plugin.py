"""almanet's pytest plugin (entry point ``pytest11``): tests of almanet services on a real nsqd.

Fixtures only. Loading it costs pytest this file: almanet and the process helpers are imported
when a fixture is first used, and the one autouse fixture (the leftover-daemon safety net) does
nothing unless a daemon was started. Scopes: ``nsqd`` serves a whole test module; a test that
asks for ``fresh_nsqd`` gets its own, and ``served``/``session``/``expect_*`` then use that one.

Async fixtures must run in the test's event loop, and pytest-asyncio and anyio's plugin each run
only the ones they are told about: ``session`` is a plain fixture that hands over to a variant
made for whichever of the two runs the test.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:
    import almanet

    from ._cluster import NsqCluster
    from ._processes import NsqdProcess, NsqlookupdProcess
    from ._serving import Call, Expectation, Message, Target

try:
    import pytest_asyncio
except ImportError:  # pytest-asyncio is optional: anyio's plugin may be the one in use
    pytest_asyncio = None  # type: ignore[assignment]

__all__: list[str] = []  # fixtures are found by pytest, not imported

_Scope = Literal["function", "class", "module", "package", "session"]
_LOOP_SCOPES: tuple[_Scope, ...] = ("function", "class", "module", "package", "session")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """pytest-asyncio warns on every run whose configuration leaves
    ``asyncio_default_fixture_loop_scope`` unset. Our async fixtures name their loop scope, so
    they need no default; a user's project that sets none gets ``function``, the default
    pytest-asyncio announces, and no warning. A value the user set is left alone."""
    if pytest_asyncio is None:
        return
    option = "asyncio_default_fixture_loop_scope"
    try:
        unset = not config.getini(option)
    except ValueError:  # a pytest-asyncio without the option: nothing to set
        return
    cache = getattr(config, "_inicache", None)  # where getini keeps values; pytest has no public setter
    if unset and isinstance(cache, dict):
        cache[option] = "function"


@pytest.fixture(scope="session", autouse=True)
def _almanet_leftover_daemons() -> Iterator[None]:
    """Safety net: an nsqd/nsqlookupd still alive when the session ends is killed and reported."""
    yield
    processes = sys.modules.get("almanet.testing._processes")
    if processes is None:  # no fixture ever ran: nothing can be left
        return
    leaked = processes.kill_leftovers()
    if leaked:
        warnings.warn(f"killed NSQ daemons left running by tests: pids {leaked}", stacklevel=1)


# -- daemons ---------------------------------------------------------------------------------


def _one(start: str) -> Iterator[Any]:
    """A daemon for the fixture's scope, closed (stopped by PID, temp dir removed) at its end."""
    from . import _processes
    from ._tools import NsqToolNotFound

    proc: Any = None
    missing = ""
    try:
        proc = getattr(_processes, start)()
    except NsqToolNotFound as exc:
        missing = str(exc)
    if missing:  # no traceback, no chained exception: the one line says where it looked and the fix
        pytest.fail(missing, pytrace=False)
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture(scope="module")
def nsqd() -> Iterator[NsqdProcess]:
    """One nsqd per test module, on free loopback ports with a temp data dir; tests share it."""
    yield from _one("start_nsqd")


@pytest.fixture
def fresh_nsqd() -> Iterator[NsqdProcess]:
    """An nsqd of the test's own, for tests that kill, restart or inspect all of its state."""
    yield from _one("start_nsqd")


@pytest.fixture
def nsqd_factory() -> Iterator[Callable[..., NsqdProcess]]:
    """``nsqd_factory(**start_nsqd_options)`` starts another nsqd; all stop at teardown."""
    from ._processes import start_nsqd

    with contextlib.ExitStack() as stack:  # every close runs even if one of them raises

        def factory(**kwargs: Any) -> NsqdProcess:
            proc = start_nsqd(**kwargs)
            stack.callback(proc.close)
            return proc

        yield factory


@pytest.fixture
def nsqlookupd() -> Iterator[NsqlookupdProcess]:
    """A private nsqlookupd; pass ``nsqlookupd.tcp_address`` to ``nsqd_factory`` to register."""
    yield from _one("start_nsqlookupd")


@pytest.fixture
def nsq_cluster() -> Iterator[Callable[..., NsqCluster]]:
    """``nsq_cluster(n)``: n nsqd registered with a new nsqlookupd (``.lookupd``, ``.nsqds``)."""
    from ._cluster import start_cluster

    with contextlib.ExitStack() as stack:

        def factory(size: int = 2, **nsqd_options: Any) -> NsqCluster:
            cluster = start_cluster(size, **nsqd_options)
            stack.callback(cluster.close)
            return cluster

        yield factory


@pytest.fixture
def almanet_nsqd(request: pytest.FixtureRequest) -> NsqdProcess:
    """The nsqd that ``served``, ``session`` and ``expect_*`` use: the test's own when it has one."""
    name = "fresh_nsqd" if "fresh_nsqd" in request.fixturenames else "nsqd"
    nsqd: NsqdProcess = request.getfixturevalue(name)
    return nsqd


# -- serving and watching --------------------------------------------------------------------


@pytest.fixture
def served(almanet_nsqd: NsqdProcess) -> Callable[..., contextlib.AbstractAsyncContextManager[almanet.Service]]:
    """``async with served(service):`` serves it on the test's nsqd until procedures are subscribed.

    Keywords: ``nsqd=`` (another nsqd or an ``nsq_cluster``), ``timeout=``, ``drain_timeout=``,
    and session options (``almanet.new_session``'s keywords).
    """
    from ._serving import serving

    def serve(
        service: almanet.Service, *, nsqd: Target | None = None, **options: Any
    ) -> contextlib.AbstractAsyncContextManager[almanet.Service]:
        return serving(service, almanet_nsqd if nsqd is None else nsqd, **options)

    return serve


def _expectations(kind: str, default: NsqdProcess) -> Iterator[Callable[..., Any]]:
    """``kind`` (expect_call or expect_message) on the test's nsqd; unread channels deleted after."""
    from . import _serving

    arm = getattr(_serving, kind)
    made: list[Expectation[Any]] = []

    def expect(name: str, *, timeout: float = 5.0, nsqd: NsqdProcess | None = None) -> Expectation[Any]:
        made.append(arm(name, default if nsqd is None else nsqd, timeout=timeout))
        return made[-1]

    yield expect
    for expectation in made:
        expectation.close()


@pytest.fixture
def expect_call(almanet_nsqd: NsqdProcess) -> Iterator[Callable[..., Expectation[Call]]]:
    """``seen = expect_call(uri)`` arms a waiter; ``await seen`` is the next call (payload, caller_id)."""
    yield from _expectations("expect_call", almanet_nsqd)


@pytest.fixture
def expect_message(almanet_nsqd: NsqdProcess) -> Iterator[Callable[..., Expectation[Message]]]:
    """``seen = expect_message(topic)`` arms a waiter; ``await seen`` is the next message produced."""
    yield from _expectations("expect_message", almanet_nsqd)


# -- the session: one fixture, a variant per async plugin -------------------------------------


def _async_variant(request: pytest.FixtureRequest, base: str) -> str:
    """The name of ``base``'s variant for the plugin that runs this test in its event loop."""
    if "anyio_backend" in request.fixturenames:
        backend = request.getfixturevalue("anyio_backend")
        name = backend if isinstance(backend, str) else backend[0]
        if name != "asyncio":
            pytest.fail(f"almanet runs on asyncio; the {base!r} fixture cannot run on anyio's {name!r} backend")
        return f"_almanet_{base}_anyio"
    marker = request.node.get_closest_marker("asyncio")
    if marker is not None and pytest_asyncio is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
        scope = scope or request.config.getini("asyncio_default_test_loop_scope") or "function"
        return f"_almanet_{base}_asyncio_{scope}"
    pytest.fail(
        f"the {base!r} fixture needs an async test run by pytest-asyncio (@pytest.mark.asyncio) or by"
        " anyio's plugin (@pytest.mark.anyio): pip install pytest-asyncio, or almanet[testing]",
        pytrace=False,
    )


@pytest.fixture
def session(request: pytest.FixtureRequest) -> almanet.Almanet:
    """A session joined to the test's nsqd, in the test's event loop; it leaves at teardown."""
    joined: almanet.Almanet = request.getfixturevalue(_async_variant(request, "session"))
    return joined


def _session_fixture() -> Callable[[NsqdProcess], AsyncIterator[almanet.Almanet]]:
    async def joined(almanet_nsqd: NsqdProcess) -> AsyncIterator[almanet.Almanet]:
        import almanet

        async with almanet.new_session(almanet_nsqd.tcp_address) as session:
            yield session

    return joined


def _asyncio_variant(scope: _Scope) -> Any:
    assert pytest_asyncio is not None  # only called when it imported
    name = f"_almanet_session_asyncio_{scope}"
    try:
        return pytest_asyncio.fixture(name=name, loop_scope=scope)(_session_fixture())
    except TypeError:  # pytest-asyncio < 0.24 has no loop_scope: fixtures share the test's loop
        return pytest_asyncio.fixture(name=name)(_session_fixture())


_almanet_session_anyio = pytest.fixture(name="_almanet_session_anyio")(_session_fixture())
if pytest_asyncio is not None:
    for _scope in _LOOP_SCOPES:
        # a fixture per loop scope: it must run in the loop of the test that uses it
        globals()[f"_almanet_session_asyncio_{_scope}"] = _asyncio_variant(_scope)
