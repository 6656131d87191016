"""The CLI's behaviour against a real nsqd: ``almanet`` commands as subprocesses.

Readiness is polled (a short call from the test), never slept for; every test stays under 15 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import almanet, call_once, nsq_env, start, stop
from tests.support.nsqproc import REPO_ROOT, NsqdProcess, start_nsqd, wait_until

pytestmark = pytest.mark.timeout(15)

TARGETS = ("tests.assets.services_ok:svc", "tests.assets.services_ok:svc_blue")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NsqdProcess, dict[str, str], Path, int]]:
    """One nsqd and one ``almanet serve`` of the test services, shared by the read-only tests."""
    tmp = tmp_path_factory.mktemp("served")
    nsqd = start_nsqd()
    env = nsq_env(tmp, nsqd)
    proc = start("serve", *TARGETS, env=env, cwd=tmp)
    try:
        wait_until(lambda: call_once((nsqd.tcp_address,), "clitest.whoami") == "RPC", 10, message="serve not ready")
        yield nsqd, env, tmp, proc.pid
    finally:
        stop(proc)
        nsqd.close()


def test_call_prints_compact_json_when_piped(served) -> None:
    _, env, cwd, _ = served
    result = almanet("call", "clitest.place", '{"id": 7, "item": "tea"}', env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b'{"placed":7}\n'


def test_call_payload_from_file_and_stdin(served) -> None:
    _, env, cwd, _ = served
    (cwd / "order.json").write_text('{"id": 8, "item": "cake"}')
    assert almanet("call", "clitest.place", "@order.json", env=env, cwd=cwd).stdout == b'{"placed":8}\n'
    result = almanet("call", "clitest.place", "-", env=env, cwd=cwd, input=b'{"id": 9, "item": "pie"}')
    assert result.stdout == b'{"placed":9}\n'


def test_call_remote_error_exits_1(served) -> None:
    _, env, cwd, _ = served
    result = almanet("call", "clitest.place", '{"id": 1, "item": "nothing"}', env=env, cwd=cwd)
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.decode().strip() == "remote error: clitest.place raised refused('nothing to place', 1)"
    invalid = almanet("call", "clitest.place", '{"id": "x"}', env=env, cwd=cwd)
    assert invalid.returncode == 1 and b"raised ValidationError(" in invalid.stderr


def test_call_nothing_serves_fails_at_once_with_exit_5(served) -> None:
    nsqd, env, cwd, _ = served
    result = almanet("call", "clitest.nobody", "--timeout", "30", env=env, cwd=cwd)
    assert result.returncode == 5
    assert (
        result.stderr.decode().strip()
        == f"timeout (not served): nothing serves clitest.nobody on nsqd {nsqd.tcp_address}"
    )


def test_multicall_prints_every_reply_errors_included(served) -> None:
    _, env, cwd, _ = served
    result = almanet("multicall", "clitest.whoami", "--timeout", "0.7", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    replies = json.loads(result.stdout)
    assert sorted(replies, key=str) == sorted(["RPC", {"error": "refused", "args": ["blue refuses"]}], key=str)
    nobody = almanet("multicall", "clitest.nobody", "--timeout", "0.3", env=env, cwd=cwd)
    assert nobody.returncode == 5 and nobody.stdout == b""  # nothing serves it: as call says


def test_describe_prints_description_and_schemas(served) -> None:
    _, env, cwd, _ = served
    result = almanet("describe", "clitest.place", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["uri"] == "clitest.place" and described["channel"] == "RPC" and described["tags"] == ["orders"]
    assert described["description"] == 'Place an order; item "nothing" is refused.'
    assert described["payload_json_schema"]["required"] == ["id", "item"]
    assert described["return_json_schema"]["type"] == "object"
    unknown = almanet("describe", "clitest.plac", env=env, cwd=cwd)
    assert unknown.returncode == 3
    assert (
        unknown.stderr.decode().strip() == "not found: no live service serves clitest.plac; did you mean clitest.place?"
    )


def test_services_lists_instances_and_nsqd_stats(served) -> None:
    nsqd, env, cwd, pid = served
    result = almanet("services", "--json", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {(i["prepath"], i["pid"]) for i in report["instances"]} == {("clitest", pid)}
    assert len(report["instances"]) == 2  # the two services of the one process: one session each
    procedures = {(p["uri"], p["channel"]): p for p in report["procedures"]}
    place = procedures[("clitest.place", "RPC")]
    assert place["nsqd"] == [{"nsqd": nsqd.http_address, "topic": True, "subscribers": 1, "depth": 0, "in_flight": 0}]
    assert place["problems"] == [] and procedures[("clitest.whoami", "blue")]["subscribers"] == 1
    assert json.loads(almanet("services", env=env, cwd=cwd).stdout)["instances"]  # auto, piped: JSON
    table = almanet("services", "-o", "table", env=env, cwd=cwd)
    assert table.returncode == 0
    text = table.stdout.decode()
    assert "clitest.place" in text and str(pid) in text and "subscribers" in text


def test_completion_lists_live_uris(served) -> None:
    _, env, cwd, _ = served
    completion = {
        **env,
        "_ALMANET_COMPLETE": "complete_bash",
        "COMP_WORDS": "almanet call clitest.p",
        "COMP_CWORD": "2",
    }
    result = subprocess.run(
        [str(Path(os.sys.executable).parent / "almanet")], env=completion, cwd=cwd, capture_output=True, timeout=10
    )
    assert result.stdout.decode().split() == ["clitest.place"], result.stderr
    completion["COMP_WORDS"] = "almanet describe clitest."
    result = subprocess.run(
        [str(Path(os.sys.executable).parent / "almanet")], env=completion, cwd=cwd, capture_output=True, timeout=10
    )
    assert result.stdout.decode().split() == ["clitest.place", "clitest.slow", "clitest.whoami"]


# ------------------------------------------------------------------ tests with their own nsqd


def test_services_flags_backlog_and_missing_subscribers(fresh_nsqd: NsqdProcess, tmp_path: Path, serve) -> None:
    env = nsq_env(tmp_path, fresh_nsqd)
    serve(env, "tests.assets.services_ok:svc")
    # with fail-fast off, a call nobody serves leaves its invocation waiting in nsqd
    (tmp_path / "queue.toml").write_text("[rpc]\nfail_fast = false\n")
    queued = almanet("call", "clitest.gone", "--timeout", "0.2", "--config", "queue.toml", env=env, cwd=tmp_path)
    assert queued.returncode == 5, queued.stderr
    report = json.loads(almanet("services", "--json", env=env, cwd=tmp_path).stdout)
    gone = next(p for p in report["procedures"] if p["uri"] == "clitest.gone")
    assert gone["instances"] == [] and gone["subscribers"] == 0 and gone["depth"] == 1
    hint = "`almanet purge clitest.gone` drops them"
    assert gone["problems"] == [f"no subscriber on {fresh_nsqd.http_address}", "1 invocations waiting", hint]
    text = almanet("services", "-o", "table", env=env, cwd=tmp_path).stdout.decode()
    assert f"clitest.gone: no subscriber on {fresh_nsqd.http_address}; 1 invocations waiting; {hint}" in text


def test_services_across_two_nsqd_found_through_lookupd(nsqlookupd, nsqd_factory, tmp_path: Path, serve) -> None:
    a = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    b = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    wait_until(lambda: len(nsqlookupd.nodes()) == 2, 5, message="nsqd did not register with lookupd")
    serve(nsq_env(tmp_path, a, b), "tests.assets.services_ok:svc")
    # the CLI knows only lookupd: nsqd TCP and HTTP addresses both come from its /nodes
    env = {**nsq_env(tmp_path, a), "ALMANET_LOOKUPD": nsqlookupd.http_address}
    del env["ALMANET_NSQD"], env["ALMANET_NSQD_HTTP"]
    result = almanet("services", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(report["nsqd"]) == sorted([a.http_address, b.http_address])
    place = next(p for p in report["procedures"] if p["uri"] == "clitest.place")
    assert sorted(n["nsqd"] for n in place["nsqd"]) == sorted([a.http_address, b.http_address])
    assert [n["subscribers"] for n in place["nsqd"]] == [1, 1] and place["subscribers"] == 2
    # and a call through lookupd-only settings reaches the service
    call = almanet("call", "clitest.place", '{"id": 3, "item": "x"}', env=env, cwd=tmp_path)
    assert call.stdout == b'{"placed":3}\n'


def test_serve_with_lookupd_only_serves_on_the_nsqd_registered_there(nsqlookupd, nsqd_factory, tmp_path: Path) -> None:
    a = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    wait_until(lambda: nsqlookupd.nodes(), 5, message="nsqd did not register with lookupd")
    env = {**nsq_env(tmp_path), "ALMANET_LOOKUPD": nsqlookupd.http_address}
    del env["ALMANET_NSQD"], env["ALMANET_NSQD_HTTP"]
    server = start("serve", "tests.assets.services_ok:svc", env=env, cwd=tmp_path)

    def ready() -> bool:
        assert server.poll() is None, "almanet serve exited"
        try:
            return call_once((a.tcp_address,), "clitest.whoami") == "RPC"
        except TimeoutError:
            return False

    try:
        wait_until(ready, 10, message="almanet serve (lookupd only) did not answer on the nsqd lookupd lists")
    finally:
        code, _, err = stop(server, signal.SIGTERM)
    assert code == 0, err
    assert f"almanet serving on the nsqd registered with nsqlookupd {nsqlookupd.http_address}" in err
    assert "serving clitest.place" in err and a.tcp_address in err


def test_services_with_an_unreachable_nsqd_http_warns_and_exits_4(nsqd: NsqdProcess, tmp_path: Path) -> None:
    env = {**nsq_env(tmp_path, nsqd), "ALMANET_NSQD_HTTP": f"{nsqd.http_address},127.0.0.1:1"}
    result = almanet("services", "--json", "--timeout", "0.3", env=env, cwd=tmp_path)
    assert result.returncode == 4
    # --json is -o json: the warning is a JSON object on stderr too
    warning = json.loads(result.stderr)
    assert warning["error"] == "warning" and warning["exit_code"] == 4
    assert warning["message"].startswith("cannot reach http://127.0.0.1:1/stats?format=json")
    assert json.loads(result.stdout)["nsqd"] == [nsqd.http_address]
    text = almanet("services", "-o", "table", "--timeout", "0.3", env=env, cwd=tmp_path)
    assert text.returncode == 4
    assert "warning: cannot reach http://127.0.0.1:1/stats?format=json" in text.stderr.decode()


def test_serve_drains_in_flight_invocations_on_sigint(nsqd: NsqdProcess, tmp_path: Path, serve) -> None:
    env = nsq_env(tmp_path, nsqd)
    server = serve(env, "tests.assets.services_ok:svc")
    marker = tmp_path / "started"
    caller = start("call", "clitest.slow", json.dumps(str(marker)), "--timeout", "10", env=env, cwd=tmp_path)
    wait_until(marker.exists, 5, message="the slow procedure did not start")
    code, _, err = stop(server, signal.SIGINT)
    assert code == 0, err
    assert "draining 1 invocations in flight" in err and "stopped" in err and "Traceback" not in err
    caller_code, out, caller_err = stop(caller, 0)  # signal 0: just wait
    assert (caller_code, out) == (0, '"done"\n'), caller_err
    # nothing it served is left subscribed
    assert all(not ch for t, ch in nsqd.topics().items() if t.startswith("_rpc_.clitest."))


def test_serve_sigterm_exits_0_and_shows_what_it_serves(nsqd: NsqdProcess, tmp_path: Path, serve) -> None:
    server = serve(nsq_env(tmp_path, nsqd), *TARGETS)
    code, _, err = stop(server, signal.SIGTERM)
    assert code == 0, err
    assert "clitest.place" in err and "blue" in err and f"almanet serving on {nsqd.tcp_address}" in err


def test_serve_with_broker_down_exits_4(tmp_path: Path) -> None:
    env = {**nsq_env(tmp_path), "ALMANET_NSQD": "127.0.0.1:1"}
    result = almanet("serve", "tests.assets.services_ok:svc", env=env, cwd=tmp_path)
    assert result.returncode == 4
    assert "broker unavailable:" in result.stderr.decode() and "127.0.0.1:1" in result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_produce_lines_then_consume_n(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    topic = unique_name()
    sent = almanet("produce", topic, "-", env=env, cwd=tmp_path, input=b'{"id": 1}\n\n[2, 3]\n"four"\n')
    assert sent.returncode == 0 and sent.stderr.decode().strip() == f"produced 3 messages to {topic}"
    assert almanet("produce", topic, '{"id": 5}', env=env, cwd=tmp_path).returncode == 0
    result = almanet("consume", topic, "-n", "4", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == ['{"id":1}', "[2,3]", '"four"', '{"id":5}']
    assert not any(c.startswith("almanet-cli-") for c in nsqd.topics()[topic])


def test_produce_file_in_batches_and_consume_json(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    topic = unique_name()
    (tmp_path / "many.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(1500)))
    sent = almanet("produce", topic, "--file", "many.jsonl", env=env, cwd=tmp_path)
    assert sent.returncode == 0 and "produced 1500 messages" in sent.stderr.decode()
    result = almanet("consume", topic, "-n", "1500", "--json", "--channel", "audit", env=env, cwd=tmp_path)
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert sorted(r["body"]["n"] for r in records) == list(range(1500))
    assert set(records[0]) == {"topic", "id", "timestamp", "attempts", "body"} and records[0]["attempts"] == 1
    assert records[0]["topic"] == topic
    # the named channel is durable and now empty: every printed message was finished
    channel = next(c for t in nsqd.stats()["topics"] if t["topic_name"] == topic for c in t["channels"])
    assert (channel["channel_name"], channel["depth"], channel["in_flight_count"]) == ("audit", 0, 0)


def test_consume_prints_non_json_bodies_as_text(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    import asyncio

    import almanet as lib

    topic = unique_name()

    async def publish() -> None:
        async with lib.new_session(nsqd.tcp_address) as session:
            await session.produce_many(topic, [b"plain text", b'{"ok": true}'], raw=True)

    asyncio.run(publish())
    env = nsq_env(tmp_path, nsqd)
    result = almanet("consume", topic, "-n", "2", env=env, cwd=tmp_path)
    assert result.stdout.decode().splitlines() == ["plain text", '{"ok":true}']
    asyncio.run(publish())
    as_json = almanet("consume", topic, "-n", "1", "--json", env=env, cwd=tmp_path)
    assert json.loads(as_json.stdout)["raw"] == "plain text"


def test_produce_delay_defers_delivery(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    topic = unique_name()
    before = time.monotonic()
    sent = almanet("produce", topic, '"later"', "--delay", "1.5", env=env, cwd=tmp_path)
    assert sent.returncode == 0 and "delivered in 1.5s" in sent.stderr.decode()
    result = almanet("consume", topic, "-n", "1", env=env, cwd=tmp_path)
    assert result.stdout == b'"later"\n'
    assert time.monotonic() - before >= 1.4


def test_produce_bad_line_sends_nothing(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    topic = unique_name()
    result = almanet("produce", topic, "-", env=nsq_env(tmp_path, nsqd), cwd=tmp_path, input=b"1\n2\n{x\n")
    assert result.returncode == 2 and "line 3 of stdin is not valid JSON" in result.stderr.decode()
    assert topic not in nsqd.topics()


def test_consume_ctrl_c_leaves_nothing_in_nsqd(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    topic = unique_name()
    consumer = start("consume", topic, env=nsq_env(tmp_path, nsqd), cwd=tmp_path)

    def channels() -> list[str]:
        return [c for c in nsqd.topics().get(topic, []) if c.startswith("almanet-cli-")]

    (channel,) = wait_until(channels, 5, message="consume did not subscribe")
    assert channel.endswith("#ephemeral")
    code, out, err = stop(consumer, signal.SIGINT)
    assert code == 130 and out == ""
    assert err.strip() == "stopped: 0 messages received"
    assert channels() == []


def test_cli_module_entry_point_matches_the_script() -> None:
    assert (REPO_ROOT / "almanet" / "cli" / "__main__.py").is_file()
