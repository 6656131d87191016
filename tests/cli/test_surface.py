"""The CLI's surface without a broker: version, help, placeholders, hinted usage errors, -o, JSON errors,
completion scripts per shell. Port 1 on 127.0.0.1 is the configured nsqd: reaching it would exit 4.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from almanet.cli import app
from tests.support.nsqproc import REPO_ROOT

DEAD_NSQD = "127.0.0.1:1"
COMMANDS = ("serve", "call", "multicall", "produce", "consume", "services", "purge", "describe", "config", "ui")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("ALMANET_CONFIG", "ALMANET_NSQD_HTTP", "ALMANET_LOOKUPD", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALMANET_NSQD", DEAD_NSQD)
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def run_cli(*args: str, home: Path, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """The real entry point (``almanet.cli.main``), for what CliRunner bypasses (argv handling)."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "ALMANET_NSQD": DEAD_NSQD}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-c", "import almanet.cli; almanet.cli.main()", *args],
        env=env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )


# ------------------------------------------------------------------ version and help


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(runner: CliRunner, flag: str) -> None:
    import almanet

    result = runner.invoke(app, [flag])
    assert result.exit_code == 0 and result.stdout == f"almanet {almanet.__version__}\n"


def test_bare_almanet_shows_the_help_and_succeeds(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 0
    assert "Usage: almanet [OPTIONS] COMMAND [ARGS]..." in result.stdout
    for command in (*COMMANDS, "completion"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("serve", "almanet serve [OPTIONS] MODULE:ATTR..."),
        ("call", "almanet call [OPTIONS] URI [PAYLOAD]"),
        ("multicall", "almanet multicall [OPTIONS] URI [PAYLOAD]"),
        ("produce", "almanet produce [OPTIONS] TOPIC [MESSAGE]"),
        ("consume", "almanet consume [OPTIONS] TOPIC..."),
        ("describe", "almanet describe [OPTIONS] URI"),
        ("purge", "almanet purge [OPTIONS] [URI]"),
        ("completion", "almanet completion [OPTIONS] [SHELL]"),
        ("ui", "almanet ui [OPTIONS]"),
        ("asyncapi", "almanet asyncapi [OPTIONS] [TARGET]"),
        ("stubs", "almanet stubs [OPTIONS] PREPATH"),
        ("fuzz", "almanet fuzz [OPTIONS] URI"),
    ],
)
def test_usage_lines_use_conventional_placeholders(runner: CliRunner, command: str, usage: str) -> None:
    text = runner.invoke(app, [command, "--help"]).stdout
    usage_line = next(line for line in text.splitlines() if "Usage:" in line)
    assert usage_line.strip() == f"Usage: {usage}"
    assert "<str>" not in text and "<float>" not in text and "<path>" not in text and "<int>" not in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_the_output_switch(runner: CliRunner, command: str) -> None:
    text = runner.invoke(app, [command, "--help"]).stdout
    assert "--output" in text and "-o" in text and "auto|json|table" in text


@pytest.mark.parametrize(
    ("args", "message", "fix"),
    [
        (["call"], "Missing argument 'URI'.", "Name the procedure: almanet call net.example.greeting '\"Aidar\"'"),
        (["produce"], "Missing argument 'TOPIC'.", "Name the topic: almanet produce orders"),
        (["consume"], "Missing argument 'TOPIC...'.", "Name one topic or more: almanet consume orders -n 1."),
        (["call", "a.b", "-t", "soon"], "'soon' is not a valid float.", "Give a number of seconds, e.g. 2.5."),
        (["consume", "t", "-n", "x"], "'x' is not a valid int", "Give a whole number, e.g. -n 10."),
        (["call", "a.b", "-o", "yaml"], "'yaml' is not one of 'auto', 'json', 'table'.", ""),
    ],
)
def test_usage_errors_name_the_fix(runner: CliRunner, args: list[str], message: str, fix: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    flat = " ".join(line.strip("│ ") for line in result.stderr.splitlines())
    assert message in flat and fix in flat, result.stderr


def test_usage_error_is_json_with_o_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["call", "-o", "json"])
    assert result.exit_code == 2
    error = json.loads(result.stderr)
    assert error["error"] == "usage error" and error["exit_code"] == 2 and error["command"] == "call"
    assert error["message"].startswith("Missing argument 'URI'. Name the procedure")


# ------------------------------------------------------------------ -o and JSON errors


def test_config_output_modes(runner: CliRunner) -> None:
    piped = runner.invoke(app, ["config"])  # CliRunner's stdout is no terminal: auto is JSON
    assert json.loads(piped.stdout)["settings"][0]["key"] == "nsq.nsqd"
    assert json.loads(runner.invoke(app, ["config", "-o", "json"]).stdout) == json.loads(piped.stdout)
    table = runner.invoke(app, ["config", "-o", "table"]).stdout
    assert "config file: none" in table and "┃ key" in table


def test_errors_are_one_json_object_with_o_json(runner: CliRunner) -> None:
    bad = runner.invoke(app, ["call", "net..x", "-o", "json"])
    assert bad.exit_code == 2 and bad.stdout == ""
    error = json.loads(bad.stderr)
    assert error["error"] == "error" and error["exit_code"] == 2
    assert "procedure URI 'net..x' is invalid" in error["message"]
    down = runner.invoke(app, ["call", "a.b", '"x"', "-o", "json", "--timeout", "1"])
    error = json.loads(down.stderr)
    assert down.exit_code == 4 and error["exit_code"] == 4 and error["error"] == "broker unavailable"
    assert error["uri"] == "a.b" and DEAD_NSQD in error["message"]
    # without -o json the same failure is the usual one line of text
    assert runner.invoke(app, ["call", "a.b", '"x"', "--timeout", "1"]).stderr.startswith("broker unavailable: ")


# ------------------------------------------------------------------ payload input


def test_quoting_hint_names_what_was_typed(runner: CliRunner) -> None:
    result = runner.invoke(app, ["call", "net.example.greeting", "Bob"])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("""(strings need JSON quotes: '"Bob"')""")
    spaced = runner.invoke(app, ["call", "net.example.greeting", "Bob Smith"])
    assert spaced.stderr.strip().endswith("""(strings need JSON quotes: '"Bob Smith"')""")
    piped = runner.invoke(app, ["call", "net.example.greeting"], input="Bob\n")
    assert piped.exit_code == 2 and "payload from stdin is not valid JSON" in piped.stderr
    assert """'"Bob"'""" in piped.stderr


def test_explain_needs_no_broker_and_uses_the_wire_functions(runner: CliRunner) -> None:
    from almanet._wire import protocol as _wire

    result = runner.invoke(app, ["call", "net.example.greeting", '"Bob"', "--explain"])
    assert result.exit_code == 0, result.stderr  # the dead nsqd was never dialled
    plan = json.loads(result.stdout)
    invocation = _wire.decode_invocation(plan["body"].encode())
    assert invocation.payload == "Bob" and invocation.id == plan["call_id"]
    assert invocation.reply_topic == plan["reply_topic"] == _wire.reply_topic(invocation.caller_id)
    assert plan["topic"] == _wire.rpc_topic("net.example.greeting") and plan["channel"] == "RPC#ephemeral"
    assert plan["reply_channel"] == _wire.REPLY_CHANNEL and plan["sent"] is False
    assert plan["subscribers"] == "unknown" and plan["timeout_ms"] is None
    assert plan["commands"]["curl"].endswith(f"'http://127.0.0.1:2/pub?topic={plan['topic']}'")
    from_stdin = runner.invoke(app, ["multicall", "a.b", "--explain", "-o", "json"], input='{"n": 1}')
    assert _wire.decode_invocation(json.loads(from_stdin.stdout)["body"].encode()).payload == {"n": 1}
    assert "-n 1" not in json.loads(from_stdin.stdout)["commands"]["nsq_tail"]  # multicall waits for all
    text = runner.invoke(app, ["call", "a.b", "--explain", "-o", "table"]).stdout
    assert "reply topic" in text and "Nothing was sent" in text and "to_nsq --nsqd-tcp-address=127.0.0.1:1" in text
    assert "subscribers   unknown" in text  # no /stats answered: the plain body, as a call would send


# ------------------------------------------------------------------ produce / consume options


def test_produce_option_checks(runner: CliRunner) -> None:
    def line(*args: str, input: str | None = None) -> str:
        result = runner.invoke(app, ["produce", "t", *args], input=input)
        assert result.exit_code == 2, result.stderr
        return result.stderr.strip()

    assert "--rate must be a positive number" in line("1", "--rate", "0")
    assert "--delimiter ';;' must be one byte" in line("1", "--delimiter", ";;")
    assert "leave out --raw and --rate" in line("1", "--raw", "--delay", "1")
    assert "no message to send" in line("--raw", "-d", ",", input=",,,")
    # --delimiter without --raw still checks every record as JSON before sending anything
    assert "line 2 of stdin is not valid JSON" in line("-d", ",", input="1,two,3")


def test_read_lines_raw_and_delimited() -> None:
    from almanet.cli.produce import parse_delimiter, read_lines

    assert read_lines(b'not json\r\n{"a":  1}\n\n', "x", raw=True) == [b"not json", b'{"a":  1}']
    assert read_lines(b"a,b,,c\n", "x", b",", raw=True) == [b"a", b"b", b"c\n"]
    assert read_lines(b"1\x002\x00", "x", parse_delimiter("\\0")) == [b"1", b"2"]
    assert parse_delimiter("\\t") == b"\t" and parse_delimiter(",") == b","


def test_consume_option_checks(runner: CliRunner) -> None:
    result = runner.invoke(app, ["consume", "t", "--max-in-flight", "0"])
    assert result.exit_code == 2 and "--max-in-flight must be between 1 and 2500" in result.stderr
    result = runner.invoke(app, ["consume", "good", "bad topic"])
    assert result.exit_code == 2 and "topic name 'bad topic' is invalid" in result.stderr


def test_consume_lines() -> None:
    from almanet._calling.models import ConsumedMessage
    from almanet.cli.consume import message_line

    class Frame:
        id, timestamp, attempts, body = b"0123456789abcdef", 1, 1, b'{"a":  1}'

    message = ConsumedMessage(Frame())  # type: ignore[arg-type]
    assert message_line(message, False) == b'{"a":1}'
    assert message_line(message, False, raw=True) == b'{"a":  1}'
    assert message_line(message, False, "orders") == b'orders | {"a":1}'
    record = json.loads(message_line(message, True, "orders", raw=True))
    assert record["topic"] == "orders" and record["raw"] == '{"a":  1}' and "body" not in record


# ------------------------------------------------------------------ completion per shell


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o default -F"), ("zsh", "#compdef almanet"), ("fish", "complete --command almanet")],
)
def test_completion_script_is_the_named_shells(runner: CliRunner, shell: str, marker: str) -> None:
    result = runner.invoke(app, ["completion", shell])
    assert result.exit_code == 0 and marker in result.stdout and "_ALMANET_COMPLETE" in result.stdout
    assert runner.invoke(app, ["--show-completion", shell]).stdout == result.stdout


@pytest.mark.parametrize(
    ("shell", "path", "marker"),
    [
        ("zsh", ".zfunc/_almanet", "#compdef almanet"),
        ("bash", ".bash_completions/almanet.sh", "complete -o default -F"),
        ("fish", ".config/fish/completions/almanet.fish", "complete --command almanet"),
    ],
)
def test_install_completion_installs_the_shell_named(tmp_path: Path, shell: str, path: str, marker: str) -> None:
    result = run_cli("--install-completion", shell, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert marker in (tmp_path / path).read_text()
    assert f"{shell} completion installed in {tmp_path / path}" in result.stderr.decode()
    others = {".zfunc", ".bash_completions", ".config"} - {Path(path).parts[0]}
    assert not any((tmp_path / other).exists() for other in others)


def test_completion_of_an_unknown_shell_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["completion", "tcsh"])
    assert result.exit_code == 2 and "'tcsh' is not one of" in result.stderr


def test_topic_completion_is_wired_and_quiet_when_nsqd_is_down(runner: CliRunner) -> None:
    import time

    import typer.main

    from almanet.cli._complete import complete_topic

    group = typer.main.get_command(app)
    for name, param in (("produce", "topic"), ("consume", "topics")):
        (arg,) = [p for p in group.get_command(None, name).params if p.name == param]  # type: ignore[attr-defined]
        assert getattr(arg, "_custom_shell_complete", None) is not None, name
    started = time.monotonic()
    assert complete_topic("or") == []
    assert time.monotonic() - started < 1.5


# ------------------------------------------------------------------ lazy commands


def test_the_help_lists_each_command_with_its_own_short_help() -> None:
    """``almanet --help`` shows COMMANDS' lines without importing the modules: each must be the
    command's own short help (or, for a group, its help), and every command must be listed."""
    import typer.main

    from almanet.cli._lazy import COMMANDS, load

    for name, (_, line) in COMMANDS.items():
        command = load(name)
        assert (command.short_help or command.help) == line, name
    group = typer.main.get_command(app)
    assert list(group.list_commands(None)) == list(COMMANDS)  # type: ignore[attr-defined]


def test_almanet_help_imports_no_command_module(tmp_path: Path) -> None:
    """Start-up: the root help (and --version) build no command; running one imports only it."""
    probe = (
        "import sys, almanet.cli\n"
        "sys.argv = ['almanet', *sys.argv[1:]]\n"
        "try:\n    almanet.cli.main()\n"
        "except SystemExit:\n    pass\n"
        "names = ('call', 'multicall', 'produce', 'consume', 'services', 'purge', 'describe', 'config', 'serve')\n"
        "print(sorted(n for n in names if 'almanet.cli.' + n in sys.modules), file=sys.stderr)\n"
    )

    def loaded(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={
                "HOME": str(tmp_path),
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(REPO_ROOT),
                "ALMANET_NSQD": DEAD_NSQD,
            },
        )
        return done.stderr.strip().splitlines()[-1]

    assert loaded("--help") == "[]"
    assert loaded("--version") == "[]"
    assert loaded("config", "-o", "json") == "['config']"
