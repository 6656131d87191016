"""Parsing, output and exit codes with typer's CliRunner: nothing here needs a broker.

Every bad input must be refused before anything is sent, with one line on stderr and exit 2.
Port 1 on 127.0.0.1 is configured as nsqd: a command that tried to connect would exit 4, not 2.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from almanet.cli import app
from tests.support.nsqproc import REPO_ROOT

DEAD_NSQD = "127.0.0.1:1"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """Isolated from the real config: cwd and HOME in tmp, no ALMANET_* variables.

    ``almanet serve`` run in-process sets the root logger's handler on CliRunner's stderr, which
    is closed once the command returns: the root's handlers are put back after each test, or
    every later test that logs prints "--- Logging error --- I/O operation on closed file".
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("ALMANET_CONFIG", "ALMANET_NSQD", "ALMANET_NSQD_HTTP", "ALMANET_LOOKUPD", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALMANET_NSQD", DEAD_NSQD)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield CliRunner()
    root.handlers[:] = handlers
    root.setLevel(level)


def one_error_line(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# ------------------------------------------------------------------ help and exit codes


def test_help_lists_every_command_and_the_exit_codes(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "call", "multicall", "produce", "consume", "services", "describe", "config"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout and "130" in result.stdout


def test_help_is_fast_and_does_not_import_the_core() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import almanet.cli; "
        "print(time.perf_counter() - t, [m for m in ('gnsq', 'gevent', 'pydantic', 'asyncio') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    seconds, loaded = out.stdout.split(" ", 1)
    assert loaded.strip() == "[]"
    assert float(seconds) < 1.0


# ------------------------------------------------------------------ call / multicall / describe input


@pytest.mark.parametrize("command", ["call", "multicall", "describe"])
def test_invalid_uri_exits_2_before_sending(runner: CliRunner, command: str) -> None:
    line = one_error_line(runner.invoke(app, [command, "net..bad uri"]), 2)
    assert "procedure URI 'net..bad uri' is invalid" in line


@pytest.mark.parametrize("command", ["call", "multicall"])
def test_invalid_json_exits_2_with_a_hint(runner: CliRunner, command: str) -> None:
    line = one_error_line(runner.invoke(app, [command, "net.example.greeting", "Aidar"]), 2)
    assert "payload is not valid JSON" in line and "JSON quotes" in line


def test_payload_from_a_missing_file_exits_2(runner: CliRunner) -> None:
    line = one_error_line(runner.invoke(app, ["call", "net.example.greeting", "@nope.json"]), 2)
    assert "cannot read payload file nope.json" in line


def test_bad_json_in_payload_file_and_stdin(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text("{oops")
    line = one_error_line(runner.invoke(app, ["call", "a.b", "@p.json"]), 2)
    assert "payload file p.json is not valid JSON" in line
    line = one_error_line(runner.invoke(app, ["call", "a.b", "-"], input="[1,"), 2)
    assert "payload from stdin is not valid JSON" in line


@pytest.mark.parametrize("command", ["call", "multicall", "describe", "services"])
def test_non_positive_timeout_exits_2(runner: CliRunner, command: str) -> None:
    args = [command] + ([] if command == "services" else ["a.b"]) + ["--timeout", "0"]
    assert "--timeout must be a positive number" in one_error_line(runner.invoke(app, args), 2)


def test_unreachable_broker_exits_4_with_the_address(runner: CliRunner) -> None:
    line = one_error_line(runner.invoke(app, ["call", "net.example.greeting", '"x"', "--timeout", "1"]), 4)
    assert DEAD_NSQD in line


def test_nsqd_option_overrides_the_environment(runner: CliRunner) -> None:
    result = runner.invoke(app, ["call", "a.b", "--nsqd", "127.0.0.1:2", "--timeout", "1"])
    assert "127.0.0.1:2" in one_error_line(result, 4)


# ------------------------------------------------------------------ serve targets


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("no_such_module:x", "cannot import module 'no_such_module': no module named 'no_such_module'"),
        ("services.example:nope", "module 'services.example' has no attribute 'nope'; services there: example_service"),
        ("tests.assets.services_ok:NOT_A_SERVICE", "is a int, not a service made by almanet.new_service()"),
        ("tests.assets.broken_import:svc", "importing 'tests.assets.broken_import' failed: RuntimeError: this module"),
        ("tests.assets.missing_dependency:svc", "it imports 'almanet_no_such_dependency', which is not installed"),
        ("services.example", "is not MODULE:ATTR"),
        ("tests.assets.services_ok:empty", "the services have no procedures to serve"),
    ],
)
def test_bad_serve_target_is_one_line_and_exit_2(runner: CliRunner, target: str, expected: str) -> None:
    monkey_path = str(REPO_ROOT)
    if monkey_path not in sys.path:
        sys.path.insert(0, monkey_path)
    line = one_error_line(runner.invoke(app, ["serve", target]), 2)
    assert expected in line


def test_bad_log_level_exits_2(runner: CliRunner) -> None:
    line = one_error_line(runner.invoke(app, ["serve", "services.example:example_service", "-l", "loud"]), 2)
    assert "--log-level 'loud'" in line


# ------------------------------------------------------------------ produce / consume input


def test_produce_invalid_json_message_exits_2(runner: CliRunner) -> None:
    line = one_error_line(runner.invoke(app, ["produce", "orders", "{id: 1}"]), 2)
    assert "message is not valid JSON" in line


def test_produce_bad_line_names_it_and_sends_nothing(runner: CliRunner) -> None:
    # nsqd is dead (port 1): reaching the network would exit 4, so exit 2 proves nothing was sent
    line = one_error_line(runner.invoke(app, ["produce", "orders", "-"], input='{"a":1}\n\n[2]\n{bad\n"ok"\n'), 2)
    assert "line 4 of stdin is not valid JSON" in line and "nothing was sent" in line


def test_produce_file_bad_line(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text("1\n2\nthree\n")
    line = one_error_line(runner.invoke(app, ["produce", "orders", "--file", "m.jsonl"]), 2)
    assert "line 3 of m.jsonl is not valid JSON" in line


def test_produce_rejects_bad_topic_empty_input_and_both_sources(runner: CliRunner, tmp_path: Path) -> None:
    assert "topic name 'bad topic!' is invalid" in one_error_line(runner.invoke(app, ["produce", "bad topic!", "1"]), 2)
    assert "no message to send" in one_error_line(runner.invoke(app, ["produce", "t", "-"], input="\n\n"), 2)
    (tmp_path / "m.jsonl").write_text("1\n")
    result = runner.invoke(app, ["produce", "t", "1", "--file", "m.jsonl"])
    assert "not both" in one_error_line(result, 2)
    assert "--delay" in one_error_line(runner.invoke(app, ["produce", "t", "1", "--delay", "-1"]), 2)


def test_consume_rejects_bad_names_and_count(runner: CliRunner) -> None:
    assert "topic name" in one_error_line(runner.invoke(app, ["consume", "a b"]), 2)
    assert "channel name" in one_error_line(runner.invoke(app, ["consume", "t", "--channel", "a/b"]), 2)
    assert "-n must be at least 1" in one_error_line(runner.invoke(app, ["consume", "t", "-n", "0"]), 2)
    dead = ["consume", "t", "--dead-letter-topic", "dead"]
    assert "needs --max-attempts N" in one_error_line(runner.invoke(app, dead), 2)
    assert "topic name" in one_error_line(runner.invoke(app, [*dead[:3], "bad name", "--max-attempts", "2"]), 2)


def test_consume_channel_names() -> None:
    from almanet._nsq.names import is_valid_name
    from almanet.cli.consume import ephemeral_channel

    name = ephemeral_channel()
    assert name.startswith("almanet-cli-") and name.endswith("#ephemeral") and len(name) == len("almanet-cli-") + 18
    assert is_valid_name(name) and name != ephemeral_channel()


# ------------------------------------------------------------------ completion


def test_completion_yields_nothing_quickly_when_the_broker_is_down(runner: CliRunner) -> None:
    from almanet.cli._complete import complete_uri

    started = time.monotonic()
    assert complete_uri("net.") == []
    assert time.monotonic() - started < 1.5


def test_completion_is_wired_to_call_and_describe() -> None:
    import typer.main

    group = typer.main.get_command(app)
    for name in ("call", "multicall", "describe"):
        (uri,) = [p for p in group.get_command(None, name).params if p.name == "uri"]  # type: ignore[attr-defined]
        assert getattr(uri, "_custom_shell_complete", None) is not None, name


# ------------------------------------------------------------------ the one options helper


def test_connection_options_carry_tls_and_auth(runner: CliRunner, tmp_path: Path) -> None:
    from almanet._settings.config import load_settings
    from almanet._settings.configure import connection_options
    from almanet.cli._common import session_options

    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "almanet.toml").write_text(
        '[timeouts]\nconnect = 1.5\ncall = 7\n[tls]\nenabled = true\nca_file = "ca.pem"\nverify = false\n'
        '[auth]\nsecret = "s3cret"\n'
    )
    settings = load_settings()
    options = connection_options(settings)
    assert options.connect_timeout == 1.5
    assert options.tls is not None and options.tls.ca_file == str(tmp_path / "ca.pem") and options.tls.verify is False
    assert options.auth_secret == "s3cret"
    assert session_options(settings)["default_timeout"] == 7.0
    assert "lookupd" not in session_options(settings)
    (tmp_path / "almanet.toml").write_text("")
    plain = connection_options(load_settings())
    assert plain.tls is None and plain.auth_secret is None and plain.connect_timeout == 5.0
    (tmp_path / "almanet.toml").write_text('[nsq]\nlookupd_http = ["l1:4161", "l2:4161"]\n')
    assert session_options(load_settings())["lookupd"] == ("l1:4161", "l2:4161")


def test_multicall_reply_items() -> None:
    from almanet._calling.models import CallResult
    from almanet._wire.errors import rpc_error
    from almanet.cli.multicall import reply_item

    assert reply_item(CallResult("id", {"a": 1})) == {"a": 1}
    assert reply_item(rpc_error("x", 2, name="denied")) == {"error": "denied", "args": ["x", 2]}
    assert json.dumps(reply_item(rpc_error(name="e")))
