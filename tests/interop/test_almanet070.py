"""The real almanet 0.7.0 (from PyPI) and ours, both ways, on one nsqd.

0.7.0 runs as a subprocess with the interpreter of ``.tools/almanet070-venv`` (made by
``scripts/setup-interop.sh``; 0.7.0 needs Python >= 3.12). Its scripts run from ``tmp_path`` so that
``import almanet`` finds 0.7.0, never this checkout. 0.7.0 leaves non-ephemeral topics and channels
behind, so every test uses a prepath of its own.

The package page's example does not run on 0.7.0 as published (see the first test); the service
script below is that example changed only as far as 0.7.0's real API requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import almanet
from tests.interop._example import denied
from tests.interop._nsqtools import tail
from tests.support.nsqproc import REPO_ROOT, NsqdProcess, new_name, wait_until

VENV = REPO_ROOT / ".tools" / "almanet070-venv"
UNAVAILABLE = REPO_ROOT / ".tools" / "almanet070-venv.unavailable"
PROCESS_TIMEOUT = 30.0

# The package page's example, verbatim but for the nsqd address.
PAGE_EXAMPLE = """\
import sys
import almanet

example_service = almanet.new_service(
    sys.argv[1],
    prepath="net.example"
)

class denied(almanet.rpc_error):
    \"\"\"Custom RPC exception\"\"\"

@example_service.procedure
async def greeting(
    session: almanet.Almanet,
    payload: str,
) -> str:
    \"\"\"Procedure that returns greeting message\"\"\"
    if payload == "guest":
        raise denied()
    return f"Hello, {payload}!"

if __name__ == "__main__":
    example_service.serve()
"""

# What it takes on 0.7.0: `new_microservice` (there is no `new_service`); the procedure gets the
# payload only (0.7.0 calls `procedure(payload)`); `@procedure(description=...)` because the bare
# decorator raises KeyError('description') in 0.7.0's register_procedure.
SERVICE_070 = """\
import sys
import almanet

example_service = almanet.new_microservice(sys.argv[1], prepath=sys.argv[2])

class denied(almanet.rpc_error):
    \"\"\"Custom RPC exception\"\"\"

@example_service.procedure(description="Procedure that returns greeting message")
async def greeting(payload: str) -> str:
    if payload == "guest":
        raise denied()
    return f"Hello, {payload}!"

@example_service.procedure(description="Fails unexpectedly")
async def boom(payload: str) -> str:
    raise RuntimeError("a secret")

if __name__ == "__main__":
    example_service.serve()
"""

# 0.7.0's caller: `call` resolves to the result itself (not an object with `.payload`), and a
# remote error is a plain `rpc_error` carrying the name, its only arg the reply's "message".
CALLER_070 = """\
import asyncio, json, sys
import almanet

async def main():
    address, prepath = sys.argv[1], sys.argv[2]
    out = {}
    async with almanet.new_session(address) as session:
        out["session_id"] = session.id
        out["result"] = await session.call(f"{prepath}.greeting", "Aidar", timeout=10)
        reply = await session.call_only(f"{prepath}.greeting", "Aidar", timeout=10)
        out["reply"] = {"call_id": reply.call_id, "is_error": reply.is_error, "payload": reply.payload}
        try:
            await session.call(f"{prepath}.greeting", "guest", timeout=10)
        except almanet.rpc_error as e:
            out["error"] = {"class": type(e).__name__, "name": e.name, "args": list(e.args)}
        try:
            await session.call(f"{prepath}.greeting", 5, timeout=10)
        except almanet.rpc_error as e:
            out["validation"] = {"name": e.name, "args": list(e.args)}
        replies = await session.multicall_only("_api_schema_.client", None, timeout=1)
        out["discovery"] = [r.payload for r in replies if not r.is_error]
    print(json.dumps(out))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def python070() -> str:
    python = VENV / "bin" / "python"
    if not python.exists():
        reason = UNAVAILABLE.read_text().strip() if UNAVAILABLE.exists() else "run scripts/setup-interop.sh"
        pytest.skip(f"almanet 0.7.0 is not installed in {VENV}: {reason}")
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, almanet; print(m.version('almanet'))"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    if probe.returncode != 0 or probe.stdout.strip() != "0.7.0":
        pytest.skip(f"almanet 0.7.0 does not import from {VENV}: {probe.stderr.strip() or probe.stdout.strip()}")
    return str(python)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.asynccontextmanager
async def service070(python: str, tmp_path: Path, nsqd: NsqdProcess, prepath: str) -> AsyncIterator[None]:
    """Run the 0.7.0 service until its procedures are subscribed; kill it on exit."""
    script = tmp_path / "service070.py"
    script.write_text(SERVICE_070)
    log = (tmp_path / "service070.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        python, str(script), nsqd.tcp_address, prepath, cwd=tmp_path, env=_env(), stdout=log, stderr=log
    )
    log.close()
    try:

        def subscribed() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"the 0.7.0 service exited ({process.returncode}):\n{_tail(tmp_path)}")
            topics = nsqd.topics()
            return all(
                "RPC" in topics.get(f"_rpc_.{prepath}.{name}", ()) and _has_clients(nsqd, f"_rpc_.{prepath}.{name}")
                for name in ("greeting", "boom")
            )

        await asyncio.to_thread(wait_until, subscribed, PROCESS_TIMEOUT, message="the 0.7.0 service did not subscribe")
        yield
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()


def _has_clients(nsqd: NsqdProcess, topic: str) -> bool:
    for t in nsqd.stats().get("topics") or []:
        if t["topic_name"] == topic:
            return any(c["channel_name"] == "RPC" and c.get("clients") for c in t.get("channels") or [])
    return False


def _tail(tmp_path: Path) -> str:
    path = tmp_path / "service070.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "<no log>"


async def run070(python: str, tmp_path: Path, name: str, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / name
    script.write_text(source)
    process = await asyncio.create_subprocess_exec(
        python, str(script), *args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        async with asyncio.timeout(PROCESS_TIMEOUT):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    assert process.returncode is not None
    return subprocess.CompletedProcess(script.name, process.returncode, out.decode(), err.decode())


# ------------------------------------------------------------------ the package page itself


def test_the_package_page_example_does_not_run_on_070(python070: str, tmp_path: Path, nsqd: NsqdProcess) -> None:
    done = asyncio.run(run070(python070, tmp_path, "page_example.py", PAGE_EXAMPLE, nsqd.tcp_address))
    assert done.returncode == 1
    assert "AttributeError: module 'almanet' has no attribute 'new_service'" in done.stderr


# ------------------------------------------------------------------ our caller, a 0.7.0 service


def test_our_session_calls_a_070_service(python070: str, tmp_path: Path, nsqd: NsqdProcess) -> None:
    prepath = f"interop070.{new_name('svc')}"

    async def scenario() -> None:
        async with service070(python070, tmp_path, nsqd, prepath):
            async with almanet.new_session(nsqd.tcp_address) as session:
                result = await session.call(f"{prepath}.greeting", "Aidar", timeout=10)
                assert result.payload == "Hello, Aidar!"

                with pytest.raises(almanet.rpc_error) as caught:
                    await session.call(f"{prepath}.greeting", "guest", timeout=10)
                # raised as a `denied` class of the caller's (the newest defined one, if several)
                assert type(caught.value).__name__ == "denied"
                assert caught.value.name == "denied" and caught.value.args == ()

                # 0.7.0 sends ValidationError and InternalError with a string message
                with pytest.raises(almanet.ValidationError) as invalid:
                    await session.call(f"{prepath}.greeting", 5, timeout=10)
                assert len(invalid.value.args) == 1 and "valid string" in invalid.value.args[0]

                with pytest.raises(almanet.InternalError) as internal:
                    await session.call(f"{prepath}.boom", "x", timeout=10)
                assert internal.value.args == ("oops",)

                schema = await session.call(f"_api_schema_.{prepath}.greeting.RPC", None, timeout=10)
                assert schema.payload["uri"] == f"{prepath}.greeting"
                assert schema.payload["channel"] == "RPC"
                assert schema.payload["version"] == 0
                assert schema.payload["tags"] == ["Default"]
                assert schema.payload["payload_json_schema"] == {"type": "string"}

    asyncio.run(scenario())


# ------------------------------------------------------------------ a 0.7.0 caller, our service


def test_a_070_caller_calls_our_service(python070: str, tmp_path: Path, nsqd: NsqdProcess) -> None:
    prepath = f"interop070.{new_name('ours')}"
    service = almanet.new_service(prepath=prepath)

    @service.procedure
    async def greeting(session: almanet.Almanet, payload: str) -> str:
        if payload == "guest":
            raise denied()
        return f"Hello, {payload}!"

    async def scenario() -> tuple[subprocess.CompletedProcess[str], str]:
        await service.start((nsqd.tcp_address,))
        try:
            done = await run070(python070, tmp_path, "caller070.py", CALLER_070, nsqd.tcp_address, prepath)
        finally:
            session_id = service.session.id
            await service.stop()
        return done, session_id

    done, session_id = asyncio.run(scenario())
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["result"] == "Hello, Aidar!"
    assert out["reply"]["payload"] == "Hello, Aidar!" and out["reply"]["is_error"] is False
    # a 0.7.0 caller gets a plain rpc_error; its one arg is our message array
    assert out["error"] == {"class": "rpc_error", "name": "denied", "args": [[]]}
    assert out["validation"] == {"name": "ValidationError", "args": [["payload: expected string, got int 5"]]}
    ours = [d for d in out["discovery"] if d["client"] == session_id]
    assert len(ours) == 1 and ours[0]["routes"] == [f"{prepath}.greeting/RPC"]


# ------------------------------------------------------------------ mixed deployment


def test_mixed_070_and_ours_on_one_uri_both_run_and_the_caller_takes_the_first(
    python070: str, tmp_path: Path, nsqd: NsqdProcess
) -> None:
    """0.7.0 listens on channel ``RPC``, we on ``RPC#ephemeral``: two channels, so both handle it."""
    prepath = f"interop070.{new_name('mix')}"
    service = almanet.new_service(prepath=prepath)

    @service.procedure
    async def greeting(session: almanet.Almanet, payload: str) -> str:
        return f"Hi from 0.8, {payload}!"

    async def scenario() -> None:
        async with service070(python070, tmp_path, nsqd, prepath):
            await service.start((nsqd.tcp_address,))
            try:
                assert sorted(nsqd.topics()[f"_rpc_.{prepath}.greeting"]) == ["RPC", "RPC#ephemeral"]
                async with almanet.new_session(nsqd.tcp_address) as session:
                    # a second channel on the caller's reply topic sees every reply to it
                    async with tail(nsqd, f"_rpc_._reply_.{session.id}#ephemeral", count=2) as replies:
                        result = await session.call(f"{prepath}.greeting", "Aidar", timeout=10)
                        seen = [await replies.next_json(), await replies.next_json()]
            finally:
                await service.stop()
        assert {r["call_id"] for r in seen} == {result.call_id}
        assert sorted(r["payload"] for r in seen) == ["Hello, Aidar!", "Hi from 0.8, Aidar!"]
        assert result.payload in {"Hello, Aidar!", "Hi from 0.8, Aidar!"}

    asyncio.run(scenario())


# ------------------------------------------------------------------ fail-fast and deadlines with 0.7.0


def test_fail_fast_calls_a_070_service_and_services_counts_its_subscriber(
    python070: str, tmp_path: Path, nsqd: NsqdProcess
) -> None:
    """0.7.0 subscribes the plain channel ``RPC``: it serves the URI as much as ``RPC#ephemeral`` does."""
    from tests.cli.conftest import almanet as cli
    from tests.cli.conftest import nsq_env

    prepath = f"interop070.{new_name('ff')}"

    async def scenario() -> None:
        async with service070(python070, tmp_path, nsqd, prepath):
            async with almanet.new_session(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
                result = await session.call(f"{prepath}.greeting", "Aidar", timeout=10)
                assert result.payload == "Hello, Aidar!"
                # 0.7.0 does not announce the deadline extension: its invocations stay plain
                assert session._caller._served[f"_rpc_.{prepath}.greeting"] is False
                with pytest.raises(almanet.timeout_error) as caught:
                    await session.call(f"{prepath}.greetin", "x", timeout=10)
                assert caught.value.reason == "not_served" and f"did you mean {prepath}.greeting?" in str(caught.value)
            env = nsq_env(tmp_path, nsqd)
            done = await asyncio.to_thread(cli, "services", "--json", env=env, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            report = json.loads(done.stdout)
            greeting = next(p for p in report["procedures"] if p["uri"] == f"{prepath}.greeting")
            assert greeting["subscribers"] == 1 and greeting["problems"] == []

    asyncio.run(scenario())


def test_explain_prints_the_070_body_for_a_070_only_subscriber_and_070_answers_it(
    python070: str, tmp_path: Path, nsqd: NsqdProcess
) -> None:
    """``--explain`` reads who subscribes: 0.7.0 announces no deadline, so the four keys, which the
    real 0.7.0 service answers when the body is published as printed (its ``curl`` line)."""
    import urllib.parse
    import urllib.request

    from tests.cli.conftest import almanet as cli
    from tests.cli.conftest import nsq_env

    prepath = f"interop070.{new_name('ex')}"

    async def scenario() -> None:
        async with service070(python070, tmp_path, nsqd, prepath):
            env = nsq_env(tmp_path, nsqd)
            done = await asyncio.to_thread(
                cli, "call", f"{prepath}.greeting", '"Aidar"', "--explain", "-o", "json", env=env, cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr
            plan = json.loads(done.stdout)
            assert plan["subscribers"] == "0.7.0-compatible only" and plan["timeout_ms"] is None
            body = json.loads(plan["body"])
            assert list(body) == ["id", "caller_id", "payload", "reply_topic"]  # exactly 0.7.0's shape
            async with tail(nsqd, plan["reply_topic"], count=1) as replies:
                url = f"http://{nsqd.http_address}/pub?" + urllib.parse.urlencode({"topic": plan["topic"]})
                request = urllib.request.Request(url, data=plan["body"].encode(), method="POST")
                with await asyncio.to_thread(urllib.request.urlopen, request, timeout=10) as answer:
                    assert answer.read() == b"OK"
                reply = await replies.next_json()
            assert reply == {"call_id": plan["call_id"], "is_error": False, "payload": "Hello, Aidar!"}

    asyncio.run(scenario())


def test_a_uri_served_by_070_and_ours_side_by_side_gets_plain_invocations(
    python070: str, tmp_path: Path, nsqd: NsqdProcess
) -> None:
    """The deadline key goes out only when every subscriber announced it: here 0.7.0 has not.

    The call id carries the deadline all the same: 0.7.0 answers (it copies the id unread) and ours,
    reading it from the id, runs the call with the caller's budget.
    """
    from almanet._wire import deadline as _deadline

    prepath = f"interop070.{new_name('dl')}"
    service = almanet.new_service(prepath=prepath)
    budgets: list[float | None] = []

    @service.procedure
    async def greeting(session: almanet.Almanet, payload: str) -> str:
        budgets.append(_deadline.budget.get())
        return f"Hi from 0.8, {payload}!"

    @service.procedure
    async def ours(session: almanet.Almanet, payload: str) -> str:
        budgets.append(_deadline.budget.get())
        return payload

    async def scenario() -> None:
        async with service070(python070, tmp_path, nsqd, prepath):
            await service.start((nsqd.tcp_address,))
            try:
                async with almanet.new_session(nsqd.tcp_address, nsqd_http=nsqd.http_address) as session:
                    async with tail(nsqd, f"_rpc_._reply_.{session.id}#ephemeral", count=2) as replies:
                        result = await session.call(f"{prepath}.greeting", "Aidar", timeout=10)
                        seen = [await replies.next_json(), await replies.next_json()]
                    # both instances answered: 0.7.0 accepted the (four-key) invocation
                    assert sorted(r["payload"] for r in seen) == ["Hello, Aidar!", "Hi from 0.8, Aidar!"]
                    assert result.payload in {"Hello, Aidar!", "Hi from 0.8, Aidar!"}
                    # ours got the four keys too, and the deadline from the id
                    assert len(budgets) == 1 and budgets[0] is not None
                    assert 0 < budgets[0] - time.time() <= 10
                    # a URI only ours serves gets the deadline
                    assert (await session.call(f"{prepath}.ours", "x", timeout=10)).payload == "x"
                    assert budgets[1] is not None
            finally:
                await service.stop()

    asyncio.run(scenario())


CALL_ONCE_070 = """\
import asyncio, json, sys
import almanet

async def main():
    address, uri, payload, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    async with almanet.new_session(address) as session:
        try:
            print(json.dumps({"result": await session.call(uri, payload, timeout=timeout)}))
        except TimeoutError:
            print(json.dumps({"timeout": True}))

asyncio.run(main())
"""


def test_a_070_callers_stale_invocation_is_dropped_and_a_fresh_one_answered(
    python070: str, tmp_path: Path, nsqd: NsqdProcess
) -> None:
    prepath = f"interop070.{new_name('stale')}"
    uri = f"{prepath}.charge"
    ran: list[str] = []
    service = almanet.new_service(prepath=prepath, stale_after=0.5)

    @service.procedure
    async def charge(session: almanet.Almanet, payload: str) -> str:
        ran.append(payload)
        return f"charged {payload}"

    async def call070(payload: str, timeout: str) -> dict[str, Any]:
        done = await run070(python070, tmp_path, "call070.py", CALL_ONCE_070, nsqd.tcp_address, uri, payload, timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    async def scenario() -> None:
        # nothing serves it yet: 0.7.0 publishes anyway, gives up after 0.3 s, the invocation waits
        assert await call070("card-1", "0.3") == {"timeout": True}
        stats = nsqd.topic_stats(f"_rpc_.{uri}") or {}
        assert stats.get("depth") == 1
        published = time.time()
        await asyncio.to_thread(wait_until, lambda: time.time() > published + 0.6, 5, message="clock")
        await service.start((nsqd.tcp_address,))
        try:
            assert await call070("card-2", "10") == {"result": "charged card-2"}
            assert service._running is not None and service._running.stale == {uri: 1}
        finally:
            await service.stop()

    asyncio.run(scenario())
    assert ran == ["card-2"]
