"""``almanet config``: every rule of where settings come from, seen through the CLI (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from almanet.cli import app


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd, HOME and XDG in tmp and no ALMANET_* variables: only what a test writes counts."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("ALMANET_CONFIG", "ALMANET_NSQD", "ALMANET_NSQD_HTTP", "ALMANET_LOOKUPD", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    return work


def config(*args: str, env: dict[str, str] | None = None) -> dict:
    result = CliRunner().invoke(app, ["config", "--json", *args], env=env)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    data["rows"] = {row["key"]: (row["value"], row["source"]) for row in data["settings"]}
    return data


def write(path: Path, nsqd: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[nsq]\nnsqd = ["{nsqd}"]\n')
    return path


def test_defaults_when_nothing_is_set(cwd: Path) -> None:
    data = config()
    assert data["config_file"] is None
    assert data["rows"]["nsq.nsqd"] == (["localhost:4150"], "default")
    assert data["rows"]["nsq.nsqd_http"] == (["localhost:4151"], "derived:nsq.nsqd")
    assert data["rows"]["timeouts.call"] == (60.0, "default")
    assert [row["key"] for row in data["settings"]][:3] == ["nsq.nsqd", "nsq.nsqd_http", "nsq.lookupd_http"]


def test_lookup_order_argument_env_cwd_user_dir(cwd: Path, tmp_path: Path) -> None:
    user = write(tmp_path / "home" / ".config" / "almanet" / "almanet.toml", "user:1")
    assert config()["rows"]["nsq.nsqd"] == (["user:1"], f"file:{user}")
    local = write(cwd / "almanet.toml", "cwd:1")
    assert config()["rows"]["nsq.nsqd"] == (["cwd:1"], f"file:{local}")
    named = write(tmp_path / "named.toml", "env:1")
    assert config(env={"ALMANET_CONFIG": str(named)})["rows"]["nsq.nsqd"] == (["env:1"], f"file:{named}")
    given = write(tmp_path / "given.toml", "arg:1")
    data = config("--config", str(given), env={"ALMANET_CONFIG": str(named)})
    assert data["config_file"] == str(given)
    assert data["rows"]["nsq.nsqd"] == (["arg:1"], f"file:{given}")


def test_xdg_config_home_is_the_user_dir(cwd: Path, tmp_path: Path) -> None:
    xdg = write(tmp_path / "xdg" / "almanet" / "almanet.toml", "xdg:1")
    assert config(env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})["rows"]["nsq.nsqd"] == (["xdg:1"], f"file:{xdg}")


def test_environment_overrides_the_file_and_the_option_overrides_both(cwd: Path) -> None:
    write(cwd / "almanet.toml", "file:1")
    env = {"ALMANET_NSQD": "a:4150, b:4150", "ALMANET_LOOKUPD": "l:4161", "ALMANET_NSQD_HTTP": "a:9"}
    rows = config(env=env)["rows"]
    assert rows["nsq.nsqd"] == (["a:4150", "b:4150"], "env:ALMANET_NSQD")
    assert rows["nsq.lookupd_http"] == (["l:4161"], "env:ALMANET_LOOKUPD")
    assert rows["nsq.nsqd_http"] == (["a:9"], "env:ALMANET_NSQD_HTTP")
    assert config("--nsqd", "c:4150", env=env)["rows"]["nsq.nsqd"] == (["c:4150"], "argument")


def test_lookupd_alone_means_no_default_nsqd(cwd: Path) -> None:
    rows = config(env={"ALMANET_LOOKUPD": "l:4161"})["rows"]
    assert rows["nsq.nsqd"][0] == [] and rows["nsq.lookupd_http"] == (["l:4161"], "env:ALMANET_LOOKUPD")


def test_the_secret_is_masked(cwd: Path) -> None:
    (cwd / "almanet.toml").write_text('[auth]\nsecret = "hunter2"\n')
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0 and "hunter2" not in result.stdout and "***" in result.stdout
    assert config()["rows"]["auth.secret"][0] == "***"


def test_table_output(cwd: Path) -> None:
    # CliRunner's stdout is not a terminal: auto means JSON there, -o table asks for the table
    assert json.loads(CliRunner().invoke(app, ["config"]).stdout)["config_file"] is None
    result = CliRunner().invoke(app, ["config", "-o", "table"], env={"ALMANET_NSQD": "h:4150", "COLUMNS": "200"})
    assert result.exit_code == 0
    assert "config file: none" in result.stdout
    assert "nsq.nsqd" in result.stdout and "env:ALMANET_NSQD" in result.stdout and "derived:nsq.nsqd" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[nsq]\nnsqd = ["a:1"\n', "almanet.toml:2"),  # malformed TOML: file and line
        ("[nsq]\nnsqd = []\nlookup_http = []\n", "almanet.toml:3: unknown key `lookup_http` in [nsq]"),
        ("[nsqd]\n", "almanet.toml:1: unknown section [nsqd]"),
        ('[timeouts]\ncall = "soon"\n', "almanet.toml:2: timeouts.call must be a number of seconds"),
    ],
)
def test_bad_file_is_one_line_naming_file_and_line(cwd: Path, text: str, expected: str) -> None:
    (cwd / "almanet.toml").write_text(text)
    for command in (["config"], ["call", "a.b", "1"], ["services"], ["produce", "t", "1"]):
        result = CliRunner().invoke(app, command, env={"COLUMNS": "300"})
        assert result.exit_code == 2, (command, result.stderr)
        assert result.stderr.startswith("config error: ") and expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_missing_named_file_is_an_error(cwd: Path) -> None:
    result = CliRunner().invoke(app, ["config", "--config", "nope.toml"], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "nope.toml (named by the --config argument) does not exist" in result.stderr
    result = CliRunner().invoke(app, ["config"], env={"ALMANET_CONFIG": "gone.toml", "COLUMNS": "300"})
    assert result.exit_code == 2 and "named by $ALMANET_CONFIG" in result.stderr


def test_the_example_file_is_a_valid_config(cwd: Path) -> None:
    from tests.support.nsqproc import REPO_ROOT

    data = config("--config", str(REPO_ROOT / "almanet.toml.example"))
    assert data["rows"]["nsq.nsqd"][0] == ["localhost:4150"]
