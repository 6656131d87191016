"""What users of grpcurl, nsq_tail and to_nsq reach for, against a real nsqd and a real service:
call from a piped stdin, -v, --explain replayed with NSQ's own tools, JSON errors, produce --raw /
--delimiter / --rate, consume of several topics with --print-topic / --max-in-flight / --raw,
topic completion. Readiness is polled, never slept for.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from almanet._wire import protocol as _wire
from tests.cli.conftest import almanet, nsq_env, start, stop
from tests.cli.test_processes import served  # noqa: F401 - the module's served service
from tests.support.nsqproc import NsqdProcess, tool_path, wait_until

pytestmark = pytest.mark.timeout(30)


def lines(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    return result.stdout.decode().splitlines()


# ------------------------------------------------------------------ call


def test_call_reads_a_piped_stdin(served) -> None:  # noqa: F811
    _, env, cwd, _ = served
    result = almanet("call", "clitest.place", env=env, cwd=cwd, input=b'{"id": 4, "item": "tea"}\n')
    assert (result.returncode, result.stdout) == (0, b'{"placed":4}\n'), result.stderr
    # an empty stdin is no payload (null), as before: whoami (payload None) answers on both its channels
    both = almanet("multicall", "clitest.whoami", "-t", "0.5", env=env, cwd=cwd, input=b"")
    assert both.returncode == 0 and "RPC" in json.loads(both.stdout), both.stderr
    # multicall reads a piped stdin too
    place = almanet("multicall", "clitest.place", "-t", "0.5", env=env, cwd=cwd, input=b'{"id": 8, "item": "x"}')
    assert json.loads(place.stdout) == [{"placed": 8}]


def test_call_verbose_shows_nsqd_topics_and_times(served) -> None:  # noqa: F811
    nsqd, env, cwd, _ = served
    result = almanet("call", "clitest.place", '{"id": 2, "item": "tea"}', "-v", env=env, cwd=cwd)
    assert result.returncode == 0 and result.stdout == b'{"placed":2}\n'
    err = result.stderr.decode()
    assert f"* nsqd         {nsqd.tcp_address} (the reply came through it)" in err
    assert "* topic        _rpc_.clitest.place" in err
    assert re.search(r"\* reply topic  _rpc_\._reply_\.[0-9a-f]{32}#ephemeral", err)
    assert re.search(r"\* published    \d+\.\d ms \(until nsqd's OK\)", err)
    assert re.search(r"\* reply        \d+\.\d ms after publishing began", err)
    as_json = almanet("call", "clitest.place", '{"id": 3, "item": "tea"}', "-v", "-o", "json", env=env, cwd=cwd)
    (line,) = as_json.stderr.splitlines()  # one JSON object, then the result on stdout
    trace = json.loads(line)["verbose"]
    assert trace["nsqd"] == [nsqd.tcp_address] and trace["topic"] == "_rpc_.clitest.place"
    assert trace["publish_ms"] > 0 and len(trace["reply_ms"]) == 1 and trace["reply_ms"][0] > 0
    assert trace["reply_topic"] == _wire.reply_topic(trace["reply_topic"].split(".")[-1].split("#")[0])
    assert json.loads(as_json.stdout) == {"placed": 3}


def test_verbose_on_a_timeout_shows_it_was_published_and_unanswered(served) -> None:  # noqa: F811
    _, env, cwd, _ = served
    # fail-fast off, so that it is published (with it on, nothing is: "published -")
    (cwd / "queue.toml").write_text("[rpc]\nfail_fast = false\n")
    result = almanet("call", "clitest.nobody", "-t", "0.3", "-v", "--config", "queue.toml", env=env, cwd=cwd)
    assert result.returncode == 5
    err = result.stderr.decode()
    assert re.search(r"\* published    \d+\.\d ms", err) and "* reply        none" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "timeout (not served): no reply from clitest.nobody within 0.3s: nothing serves clitest.nobody"
    )
    refused = almanet("call", "clitest.nobody", "-t", "0.3", "-v", env=env, cwd=cwd)
    assert refused.returncode == 5 and "* published    -" in refused.stderr.decode()


def test_multicall_verbose_counts_the_replies(served) -> None:  # noqa: F811
    _, env, cwd, _ = served
    result = almanet("multicall", "clitest.whoami", "-t", "0.7", "-v", env=env, cwd=cwd)
    assert result.returncode == 0 and len(json.loads(result.stdout)) == 2
    assert re.search(r"\* reply        2 replies, first \d+\.\d ms, last \d+\.\d ms", result.stderr.decode())


def test_remote_error_and_timeout_as_json_objects(served) -> None:  # noqa: F811
    _, env, cwd, _ = served
    result = almanet("call", "clitest.place", '{"id": 1, "item": "nothing"}', "-o", "json", env=env, cwd=cwd)
    assert result.returncode == 1 and result.stdout == b""
    assert json.loads(result.stderr) == {
        "error": "remote error",
        "message": "clitest.place raised refused('nothing to place', 1)",
        "exit_code": 1,
        "name": "refused",
        "args": ["nothing to place", 1],
        "uri": "clitest.place",
    }
    late = almanet("call", "clitest.nobody", "-t", "0.2", "-o", "json", env=env, cwd=cwd)
    error = json.loads(late.stderr)
    assert late.returncode == 5  # nothing serves it: refused at once, with its reason
    assert (error["error"], error["exit_code"], error["uri"]) == ("timeout", 5, "clitest.nobody")
    assert error["reason"] == "not_served"


def _replay(plan: dict, command: str, env: dict[str, str], nsqd: NsqdProcess, cwd: Path) -> dict:
    """Run the plan's nsq_tail, then its ``command`` (to_nsq or curl) in a shell; the reply nsq_tail printed."""
    tail_args = shlex.split(plan["commands"]["nsq_tail"])
    tail = subprocess.Popen(
        [tool_path("nsq_tail"), *tail_args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd
    )
    try:
        wait_until(
            lambda: plan["reply_channel"] in nsqd.topics().get(plan["reply_topic"], []),
            10,
            message="nsq_tail did not subscribe the reply topic",
        )
        shell_env = {**env, "PATH": f"{Path(tool_path('to_nsq')).parent}{os.pathsep}{env.get('PATH', '')}"}
        sent = subprocess.run(
            ["bash", "-c", plan["commands"][command]], env=shell_env, capture_output=True, timeout=10, check=False
        )
        assert sent.returncode == 0, sent.stderr
        out, err = tail.communicate(timeout=10)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.communicate()
    assert tail.returncode == 0, err
    return json.loads(out.decode().strip())


def test_explain_sends_nothing_and_its_commands_replay_the_call(served) -> None:  # noqa: F811
    nsqd, env, cwd, _ = served
    result = almanet("call", "clitest.place", '{"id": 5, "item": "tea"}', "--explain", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["sent"] is False and plan["reply_topic"] not in nsqd.topics()  # nothing subscribed or sent
    # our service announces the deadline: the body carries it, as the real call's would (60 s default)
    assert plan["subscribers"] == "deadline-aware" and plan["timeout_ms"] == 60_000
    assert _wire.decode_invocation(plan["body"].encode()).timeout_ms == 60_000
    short = almanet("call", "clitest.place", "1", "--explain", "-t", "2.5", env=env, cwd=cwd)
    assert json.loads(json.loads(short.stdout)["body"])["timeout_ms"] == 2500
    reply = _replay(plan, "to_nsq", env, nsqd, cwd)
    assert reply == {"call_id": plan["call_id"], "is_error": False, "payload": {"placed": 5}}
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the to_nsq replay passed, the curl one cannot run")
    again = almanet("call", "clitest.place", '{"id": 6, "item": "pie"}', "--explain", env=env, cwd=cwd)
    plan = json.loads(again.stdout)
    assert _replay(plan, "curl", env, nsqd, cwd)["payload"] == {"placed": 6}


# ------------------------------------------------------------------ produce


def test_produce_raw_sends_lines_as_they_are(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    topic = unique_name()
    text = b'not json\n{"a":  1}\n\n'
    sent = almanet("produce", topic, "--raw", env=env, cwd=tmp_path, input=text)
    assert sent.returncode == 0 and sent.stderr.decode().strip() == f"produced 2 messages to {topic}"
    raw = almanet("consume", topic, "-n", "2", "--raw", env=env, cwd=tmp_path)
    assert raw.stdout == b'not json\n{"a":  1}\n'
    assert almanet("produce", topic, "--raw", env=env, cwd=tmp_path, input=text).returncode == 0
    decoded = almanet("consume", topic, "-n", "2", env=env, cwd=tmp_path)
    assert decoded.stdout == b'not json\n{"a":1}\n'  # without --raw, JSON bodies are decoded and re-encoded


def test_produce_delimiter_and_json_summary(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    topic = unique_name()
    sent = almanet("produce", topic, "--raw", "-d", ",", "-o", "json", env=env, cwd=tmp_path, input=b"a,b,,c")
    assert sent.returncode == 0 and json.loads(sent.stdout) == {"produced": 3, "topic": topic, "delay": None}
    assert sent.stderr == b""
    assert lines(almanet("consume", topic, "-n", "3", "--raw", env=env, cwd=tmp_path)) == ["a", "b", "c"]


def test_produce_rate_paces_the_messages(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    topic = unique_name()
    body = "".join(f"{i}\n" for i in range(20)).encode()
    sent = almanet("produce", topic, "--rate", "40", env=env, cwd=tmp_path, input=body)
    assert sent.returncode == 0, sent.stderr
    consumed = almanet("consume", topic, "-n", "20", "-o", "json", env=env, cwd=tmp_path)
    records = [json.loads(line) for line in lines(consumed)]
    assert sorted(r["body"] for r in records) == list(range(20))
    # nsqd's own receive times: 20 messages at 40/s span at least 19/40 s
    stamps = sorted(r["timestamp"] for r in records)
    assert (stamps[-1] - stamps[0]) / 1e9 >= 0.45


# ------------------------------------------------------------------ consume


def test_consume_several_topics_with_print_topic(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    first, second = unique_name(), unique_name()
    for topic, message in ((first, '{"n": 1}'), (second, '"two"')):
        assert almanet("produce", topic, message, env=env, cwd=tmp_path).returncode == 0
    result = almanet("consume", first, second, "-n", "2", "--print-topic", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(lines(result)) == sorted([f'{first} | {{"n":1}}', f'{second} | "two"'])
    for topic, message in ((first, "1"), (second, "2")):
        almanet("produce", topic, message, env=env, cwd=tmp_path)
    consumed = almanet("consume", first, second, "-n", "2", "-o", "json", env=env, cwd=tmp_path)
    records = [json.loads(x) for x in lines(consumed)]
    assert sorted((r["topic"], r["body"]) for r in records) == sorted([(first, 1), (second, 2)])


def test_consume_max_in_flight_is_the_rdy_nsqd_sees(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    first, second = unique_name(), unique_name()
    one = start("consume", first, "--max-in-flight", "7", "--channel", "mif", env=env, cwd=tmp_path)
    two = start("consume", first, second, "--max-in-flight", "8", "--channel", "pair", env=env, cwd=tmp_path)

    def ready(topic: str, channel: str) -> list[int]:
        return [c["ready_count"] for c in (nsqd.channel_stats(topic, channel) or {}).get("clients") or []]

    # A client is listed once subscribed, with RDY 0 until its first RDY arrives: wait for the
    # value itself, and say what was seen if it never comes.
    def settle(expected: dict[tuple[str, str], list[int]]) -> None:
        def now() -> bool:
            seen.update({key: ready(*key) for key in expected})
            return all(seen[key] == value for key, value in expected.items())

        try:
            wait_until(now, 10)
        except AssertionError as exc:
            raise AssertionError(f"RDY never became {expected}; last seen {seen}") from exc

    seen: dict[tuple[str, str], list[int]] = {}
    try:
        settle({(first, "mif"): [7]})
        settle({(first, "pair"): [4], (second, "pair"): [4]})  # the 8 shared by the two topics
    finally:
        results = [stop(one, signal.SIGINT), stop(two, signal.SIGINT)]
    assert [code for code, _, _ in results] == [130, 130]


# ------------------------------------------------------------------ serve -o json, topic completion


def test_serve_json_says_what_it_serves(nsqd: NsqdProcess, tmp_path: Path, serve) -> None:
    server = serve(nsq_env(tmp_path, nsqd), "tests.assets.services_ok:svc", "-o", "json")  # answering by now
    code, out, err = stop(server, signal.SIGTERM)
    assert code == 0, err
    first = json.loads(out.splitlines()[0])
    assert {p["uri"] for p in first["serving"]} == {"clitest.place", "clitest.whoami", "clitest.slow"}
    assert first["nsqd"] == [nsqd.tcp_address] and first["lookupd"] == []


def test_topic_completion_from_nsqd_stats(nsqd: NsqdProcess, tmp_path: Path, unique_name) -> None:
    env = nsq_env(tmp_path, nsqd)
    prefix = unique_name("tc")
    for suffix in ("orders", "audit"):
        assert almanet("produce", f"{prefix}_{suffix}", "1", env=env, cwd=tmp_path).returncode == 0
    script = str(Path(os.sys.executable).parent / "almanet")
    for command in ("consume", "produce"):
        completion = {**env, "_ALMANET_COMPLETE": "complete_bash", "COMP_WORDS": f"almanet {command} {prefix}_"}
        completion["COMP_CWORD"] = "2"
        found = subprocess.run([script], env=completion, cwd=tmp_path, capture_output=True, timeout=10, check=False)
        assert found.stdout.decode().split() == [f"{prefix}_audit", f"{prefix}_orders"], found.stderr
