"""almanet._settings.config: file lookup, priority, provenance and error messages.

Every test passes an explicit env dict and a tmp_path cwd, so the real home directory and
environment never leak in.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from almanet._settings.config import (
    ENV_VARS,
    KEYS,
    Settings,
    TLSSettings,
    find_config_file,
    load_settings,
    split_address,
)
from almanet._wire.errors import config_error

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return {"HOME": str(home)}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- split_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:4150", ("localhost", 4150)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("  nsqd-1.example.com:65535 ", ("nsqd-1.example.com", 65535)),
        ("[::1]:4150", ("::1", 4150)),
        ("[fe80::1%eth0]:4150", ("fe80::1%eth0", 4150)),
    ],
)
def test_split_address_accepts(text: str, expected: tuple[str, int]) -> None:
    assert split_address(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty address"),
        ("localhost", "has no port"),
        (":4150", "has no host"),
        ("localhost:0", "outside 1..65535"),
        ("localhost:65536", "outside 1..65535"),
        ("localhost:http", "is not a number"),
        ("localhost:-1", "is not a number"),
        ("::1:4150", "in brackets"),
        ("[::1]", "[ipv6]:port"),
        ("[nothost]:4150", "not an IPv6 address"),
        ("http://localhost:4161", "without it, e.g. localhost:4161"),
        ("bad host:1", "not a host name"),
    ],
)
def test_split_address_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        split_address(text)
    assert fragment in str(info.value)
    assert not isinstance(info.value, config_error)


# --------------------------------------------------------------------------- defaults


def test_defaults_when_nothing_is_configured(env: dict[str, str], cwd: Path) -> None:
    settings = load_settings(env=env, cwd=cwd)
    assert settings == Settings(
        nsqd=("localhost:4150",),
        nsqd_http=("localhost:4151",),
        lookupd_http=(),
        call_timeout=60.0,
        connect_timeout=5.0,
        tls=TLSSettings(enabled=False, ca_file=None, cert_file=None, key_file=None, verify=True),
        auth_secret=None,
    )
    assert settings.config_file is None
    assert set(settings.sources) == set(KEYS)
    assert settings.sources["nsq.nsqd_http"] == "derived:nsq.nsqd"
    assert {k: v for k, v in settings.sources.items() if k != "nsq.nsqd_http"} == dict.fromkeys(
        set(KEYS) - {"nsq.nsqd_http"}, "default"
    )


def test_settings_are_frozen_and_slotted(env: dict[str, str], cwd: Path) -> None:
    settings = load_settings(env=env, cwd=cwd)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.nsqd = ("x:1",)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.tls.enabled = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.sources["nsq.nsqd"] = "argument"  # type: ignore[index]
    assert not hasattr(settings, "__dict__")
    assert not hasattr(settings.tls, "__dict__")


def test_env_defaults_to_os_environ_and_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("ALMANET_CONFIG", raising=False)
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ALMANET_NSQD", "fromenv:4150")
    write(tmp_path / "almanet.toml", "[timeouts]\ncall = 3\n")
    settings = load_settings()
    assert settings.nsqd == ("fromenv:4150",)
    assert settings.call_timeout == 3.0
    assert settings.config_file == (tmp_path / "almanet.toml").absolute()


# --------------------------------------------------------------------------- search order


def test_search_order(env: dict[str, str], cwd: Path, home: Path, tmp_path: Path) -> None:
    user = write(home / ".config" / "almanet" / "almanet.toml", "[timeouts]\ncall = 4\n")
    assert load_settings(env=env, cwd=cwd).config_file == user

    xdg = write(tmp_path / "xdg" / "almanet" / "almanet.toml", "[timeouts]\ncall = 3\n")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    assert load_settings(env=env, cwd=cwd).config_file == xdg

    local = write(cwd / "almanet.toml", "[timeouts]\ncall = 2\n")
    assert load_settings(env=env, cwd=cwd).config_file == local

    named = write(tmp_path / "named.toml", "[timeouts]\ncall = 1\n")
    env["ALMANET_CONFIG"] = str(named)
    assert load_settings(env=env, cwd=cwd).config_file == named
    assert find_config_file(None, env, cwd) == (named, "env:ALMANET_CONFIG")

    explicit = write(tmp_path / "explicit.toml", "[timeouts]\ncall = 0.5\n")
    settings = load_settings(explicit, env=env, cwd=cwd)
    assert settings.config_file == explicit
    assert settings.call_timeout == 0.5
    assert settings.sources["timeouts.call"] == f"file:{explicit}"


def test_relative_xdg_config_home_is_ignored(env: dict[str, str], cwd: Path, home: Path) -> None:
    write(cwd / "rel" / "almanet" / "almanet.toml", "[timeouts]\ncall = 3\n")
    user = write(home / ".config" / "almanet" / "almanet.toml", "")
    env["XDG_CONFIG_HOME"] = "rel"
    assert load_settings(env=env, cwd=cwd).config_file == user


def test_no_home_means_no_user_file(cwd: Path) -> None:
    assert find_config_file(None, {}, cwd) == (None, "none")


def test_relative_explicit_path_is_relative_to_cwd(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "conf" / "a.toml", "")
    assert load_settings("conf/a.toml", env=env, cwd=cwd).config_file == path


def test_missing_explicit_file_is_an_error(env: dict[str, str], cwd: Path) -> None:
    write(cwd / "almanet.toml", "")  # present, but must not be used as a fallback
    with pytest.raises(config_error) as info:
        load_settings("nope.toml", env=env, cwd=cwd)
    assert str(cwd / "nope.toml") in str(info.value)
    assert "--config" in str(info.value)
    assert "does not exist" in str(info.value)


def test_missing_env_file_is_an_error(env: dict[str, str], cwd: Path, tmp_path: Path) -> None:
    env["ALMANET_CONFIG"] = str(tmp_path / "gone.toml")
    with pytest.raises(config_error, match=r"ALMANET_CONFIG.*does not exist"):
        load_settings(env=env, cwd=cwd)


def test_directory_as_config_file_is_an_error(env: dict[str, str], cwd: Path) -> None:
    with pytest.raises(config_error, match="is a directory"):
        load_settings(cwd, env=env, cwd=cwd)


def test_empty_almanet_config_is_unset(env: dict[str, str], cwd: Path) -> None:
    env["ALMANET_CONFIG"] = ""
    assert load_settings(env=env, cwd=cwd).config_file is None


# --------------------------------------------------------------------------- priority and provenance


FULL_FILE = """\
[nsq]
nsqd = ["file-a:4150", "file-b:4150"]
nsqd_http = ["file-a:9000"]
lookupd_http = ["lookup:4161"]

[timeouts]
call = 10
connect = 2.5

[tls]
enabled = true
verify = false

[auth]
secret = "s3cret"

[rpc]
fail_fast = false

[serve]
http = "127.0.0.1:9100"

[log]
format = "json"

[liveness]
heartbeat = 5
silent_after = 12
ack_timeout = 0.5
"""


def test_file_values_and_provenance(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", FULL_FILE)
    settings = load_settings(env=env, cwd=cwd)
    assert settings.nsqd == ("file-a:4150", "file-b:4150")
    assert settings.nsqd_http == ("file-a:9000",)
    assert settings.lookupd_http == ("lookup:4161",)
    assert settings.call_timeout == 10.0 and isinstance(settings.call_timeout, float)
    assert settings.connect_timeout == 2.5
    assert settings.tls == TLSSettings(enabled=True, verify=False)
    assert settings.auth_secret == "s3cret"
    assert settings.fail_fast is False
    assert settings.serve_http == "127.0.0.1:9100" and settings.log_format == "json"
    assert (settings.heartbeat, settings.silent_after, settings.ack_timeout) == (5.0, 12.0, 0.5)
    expected = dict.fromkeys(KEYS, f"file:{path}")
    for key in ("tls.ca_file", "tls.cert_file", "tls.key_file"):
        expected[key] = "default"
    assert dict(settings.sources) == expected


@pytest.mark.parametrize(
    ("var", "key", "attribute"),
    [
        ("ALMANET_NSQD", "nsq.nsqd", "nsqd"),
        ("ALMANET_NSQD_HTTP", "nsq.nsqd_http", "nsqd_http"),
        ("ALMANET_LOOKUPD", "nsq.lookupd_http", "lookupd_http"),
    ],
)
def test_env_overrides_file(env: dict[str, str], cwd: Path, var: str, key: str, attribute: str) -> None:
    write(cwd / "almanet.toml", FULL_FILE)
    env[var] = " env-a:1 , env-b:2,,"
    settings = load_settings(env=env, cwd=cwd)
    assert getattr(settings, attribute) == ("env-a:1", "env-b:2")
    assert settings.sources[key] == f"env:{var}"


def test_argument_overrides_env_and_file(env: dict[str, str], cwd: Path) -> None:
    write(cwd / "almanet.toml", FULL_FILE)
    env["ALMANET_NSQD"] = "env:1"
    settings = load_settings(
        env=env,
        cwd=cwd,
        overrides={"nsq.nsqd": ["arg:1"], "timeouts.call": 1, "tls.enabled": False, "auth.secret": None},
    )
    assert settings.nsqd == ("arg:1",)
    assert settings.call_timeout == 1.0
    assert settings.tls.enabled is False
    assert settings.auth_secret == "s3cret"  # None means "not given"
    assert settings.sources["nsq.nsqd"] == "argument"
    assert settings.sources["timeouts.call"] == "argument"
    assert settings.sources["tls.enabled"] == "argument"
    assert settings.sources["auth.secret"].startswith("file:")


def test_argument_addresses_may_be_a_comma_separated_string(env: dict[str, str], cwd: Path) -> None:
    settings = load_settings(env=env, cwd=cwd, overrides={"nsq.lookupd_http": "a:1,b:2"})
    assert settings.lookupd_http == ("a:1", "b:2")


def test_unknown_override_key_suggests(env: dict[str, str], cwd: Path) -> None:
    with pytest.raises(config_error, match=r"'timeouts\.cal'.*did you mean `timeouts\.call`"):
        load_settings(env=env, cwd=cwd, overrides={"timeouts.cal": 1})


def test_empty_env_var_is_unset(env: dict[str, str], cwd: Path) -> None:
    env["ALMANET_NSQD"] = "  "
    settings = load_settings(env=env, cwd=cwd)
    assert settings.nsqd == ("localhost:4150",)
    assert settings.sources["nsq.nsqd"] == "default"


def test_addresses_are_normalised_and_deduplicated(env: dict[str, str], cwd: Path) -> None:
    settings = load_settings(env=env, cwd=cwd, overrides={"nsq.nsqd": ["a:1", " a:1", "[::1]:2"]})
    assert settings.nsqd == ("a:1", "[::1]:2")
    assert settings.nsqd_http == ("a:2", "[::1]:3")


# --------------------------------------------------------------------------- addresses


def test_nsqd_http_is_derived_from_nsqd(env: dict[str, str], cwd: Path) -> None:
    env["ALMANET_NSQD"] = "h1:5000,h2:6000"
    settings = load_settings(env=env, cwd=cwd)
    assert settings.nsqd_http == ("h1:5001", "h2:6001")
    assert settings.sources["nsq.nsqd_http"] == "derived:nsq.nsqd"


def test_nsqd_http_cannot_be_derived_from_port_65535(env: dict[str, str], cwd: Path) -> None:
    env["ALMANET_NSQD"] = "h:65535"
    with pytest.raises(config_error, match=r"set nsq\.nsqd_http"):
        load_settings(env=env, cwd=cwd)
    env["ALMANET_NSQD_HTTP"] = "h:8080"
    assert load_settings(env=env, cwd=cwd).nsqd_http == ("h:8080",)


def test_lookupd_only_has_no_default_nsqd(env: dict[str, str], cwd: Path) -> None:
    env["ALMANET_LOOKUPD"] = "lookup:4161"
    settings = load_settings(env=env, cwd=cwd)
    assert settings.nsqd == ()
    assert settings.nsqd_http == ()
    assert settings.lookupd_http == ("lookup:4161",)


def test_nowhere_to_connect_is_an_error(env: dict[str, str], cwd: Path) -> None:
    write(cwd / "almanet.toml", "[nsq]\nnsqd = []\n")
    with pytest.raises(config_error, match="no NSQ address configured"):
        load_settings(env=env, cwd=cwd)


def test_bad_address_in_file_names_file_line_and_key(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", '# addresses\n[nsq]\nnsqd = ["localhost"]\n')
    with pytest.raises(config_error) as info:
        load_settings(env=env, cwd=cwd)
    message = str(info.value)
    assert message.startswith(f"{path}:3: nsq.nsqd:")
    assert "has no port" in message


def test_bad_address_in_env_names_the_variable(env: dict[str, str], cwd: Path) -> None:
    env["ALMANET_LOOKUPD"] = "lookup:4161,lookup:99999"
    with pytest.raises(config_error) as info:
        load_settings(env=env, cwd=cwd)
    assert "$ALMANET_LOOKUPD" in str(info.value)
    assert "nsq.lookupd_http" in str(info.value)
    assert "99999" in str(info.value)


def test_address_list_of_wrong_type(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", "[nsq]\nnsqd = [4150]\n")
    with pytest.raises(config_error, match=rf"^{re.escape(str(path))}:2: nsq.nsqd must be a list of"):
        load_settings(env=env, cwd=cwd)


# --------------------------------------------------------------------------- timeouts and types


@pytest.mark.parametrize("value", ['"60"', "true", "[1]"])
def test_timeout_of_wrong_type(env: dict[str, str], cwd: Path, value: str) -> None:
    path = write(cwd / "almanet.toml", f"[timeouts]\nconnect = 1\ncall = {value}\n")
    with pytest.raises(config_error) as info:
        load_settings(env=env, cwd=cwd)
    assert str(info.value).startswith(f"{path}:3: timeouts.call must be a number of seconds")


@pytest.mark.parametrize("value", ["0", "-1.5", "inf", "nan", "1e20", "86400.5"])
def test_timeout_must_be_positive_and_at_most_a_day(env: dict[str, str], cwd: Path, value: str) -> None:
    write(cwd / "almanet.toml", f"[timeouts]\nconnect = {value}\n")
    with pytest.raises(config_error, match=r"timeouts\.connect must be a positive number of seconds, at most 86400"):
        load_settings(env=env, cwd=cwd)


def test_bool_of_wrong_type(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", '[tls]\nenabled = "yes"\n')
    with pytest.raises(config_error, match=rf"^{re.escape(str(path))}:2: tls.enabled must be true or false"):
        load_settings(env=env, cwd=cwd)


def test_secret_of_wrong_type(env: dict[str, str], cwd: Path) -> None:
    write(cwd / "almanet.toml", "[auth]\nsecret = 123\n")
    with pytest.raises(config_error, match=r"auth\.secret must be a string"):
        load_settings(env=env, cwd=cwd)


def test_section_that_is_not_a_table(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", "nsq = 1\n")
    with pytest.raises(config_error, match=rf"^{re.escape(str(path))}:1: `nsq` must be a table"):
        load_settings(env=env, cwd=cwd)


# --------------------------------------------------------------------------- malformed and unknown


def test_malformed_toml_names_file_line_and_column(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", '[nsq]\nnsqd = ["a:1"]\ncall = "unterminated\n')
    with pytest.raises(config_error) as info:
        load_settings(env=env, cwd=cwd)
    message = str(info.value)
    assert message.startswith(f"{path}:3:")
    assert "invalid TOML" in message
    assert "(at line" not in message


def test_malformed_toml_at_end_of_document(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", "[timeouts]\ncall =")
    with pytest.raises(config_error) as info:
        load_settings(env=env, cwd=cwd)
    assert str(info.value).startswith(f"{path}:2: invalid TOML")
    assert "end of file" in str(info.value)


def test_duplicate_key_is_malformed(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", "[timeouts]\ncall = 1\ncall = 2\n")
    with pytest.raises(config_error, match=rf"^{re.escape(str(path))}:3:\d+: invalid TOML"):
        load_settings(env=env, cwd=cwd)


def test_non_utf8_file(env: dict[str, str], cwd: Path) -> None:
    (cwd / "almanet.toml").write_bytes(b"[auth]\nsecret = '\xff'\n")
    with pytest.raises(config_error, match="UTF-8"):
        load_settings(env=env, cwd=cwd)


def test_unknown_key_names_line_and_suggests(env: dict[str, str], cwd: Path) -> None:
    text = "[nsq]\nnsqd = ['a:1']\n\n[timeouts]\nconnect = 1\ncal = 5\n"
    path = write(cwd / "almanet.toml", text)
    with pytest.raises(config_error) as info:
        load_settings(env=env, cwd=cwd)
    message = str(info.value)
    assert message.startswith(f"{path}:6: unknown key `cal` in [timeouts]")
    assert "did you mean `call`?" in message


def test_unknown_key_finds_the_line_in_its_own_section(env: dict[str, str], cwd: Path) -> None:
    # `verfy` appears in a comment of another section first: the line must be the one in [tls].
    text = "[nsq]\n# verfy = nothing\nnsqd = ['a:1']\n[tls]\nenabled = false\nverfy = true\n"
    path = write(cwd / "almanet.toml", text)
    with pytest.raises(
        config_error,
        match=rf"^{re.escape(str(path))}:6: unknown key `verfy` in \[tls\]; did you mean `verify`",
    ):
        load_settings(env=env, cwd=cwd)


def test_key_in_the_wrong_section_says_where_it_belongs(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", "[nsq]\ncall = 5\n")
    with pytest.raises(
        config_error, match=rf"^{re.escape(str(path))}:2: unknown key `call` in \[nsq\]; `call` belongs under"
    ):
        load_settings(env=env, cwd=cwd)


def test_unknown_section_suggests(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", "[nsq]\nnsqd = ['a:1']\n\n[timeout]\ncall = 1\n")
    with pytest.raises(config_error) as info:
        load_settings(env=env, cwd=cwd)
    assert str(info.value) == f"{path}:4: unknown section [timeout]; did you mean `timeouts`?"


def test_key_at_top_level_says_which_section(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", "# top\nnsqd = ['a:1']\n")
    with pytest.raises(
        config_error,
        match=rf"^{re.escape(str(path))}:2: unknown section \[nsqd\]; `nsqd` is a key: put it under \[nsq\]",
    ):
        load_settings(env=env, cwd=cwd)


def test_dotted_keys_are_understood(env: dict[str, str], cwd: Path) -> None:
    write(cwd / "almanet.toml", "timeouts.call = 7\n")
    assert load_settings(env=env, cwd=cwd).call_timeout == 7.0
    path = write(cwd / "almanet.toml", "timeouts.call = 7\ntimeouts.conect = 1\n")
    with pytest.raises(config_error, match=rf"^{re.escape(str(path))}:2: unknown key `conect`.*`connect`"):
        load_settings(env=env, cwd=cwd)


# --------------------------------------------------------------------------- TLS files


def test_tls_files_relative_to_the_config_file(env: dict[str, str], cwd: Path, tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    ca = write(conf_dir / "certs" / "ca.pem", "x")
    cert = write(conf_dir / "client.pem", "x")
    key = write(conf_dir / "client-key.pem", "x")
    text = '[tls]\nenabled = true\nca_file = "certs/ca.pem"\ncert_file = "client.pem"\nkey_file = "client-key.pem"\n'
    path = write(conf_dir / "almanet.toml", text)
    settings = load_settings(path, env=env, cwd=cwd)
    assert settings.tls == TLSSettings(enabled=True, ca_file=ca, cert_file=cert, key_file=key, verify=True)
    assert settings.sources["tls.ca_file"] == f"file:{path}"


def test_tls_file_from_argument_is_relative_to_cwd(env: dict[str, str], cwd: Path, home: Path) -> None:
    ca = write(cwd / "ca.pem", "x")
    assert load_settings(env=env, cwd=cwd, overrides={"tls.ca_file": "ca.pem"}).tls.ca_file == ca
    in_home = write(home / "ca.pem", "x")
    assert load_settings(env=env, cwd=cwd, overrides={"tls.ca_file": "~/ca.pem"}).tls.ca_file == in_home


def test_missing_tls_file_is_an_error(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", '[tls]\nenabled = true\nca_file = "missing.pem"\n')
    with pytest.raises(config_error) as info:
        load_settings(env=env, cwd=cwd)
    message = str(info.value)
    assert message.startswith(f"{path}:3: tls.ca_file")
    assert str(cwd / "missing.pem") in message
    assert "does not exist" in message


def test_empty_tls_path_means_unset(env: dict[str, str], cwd: Path) -> None:
    write(cwd / "almanet.toml", '[tls]\nca_file = ""\n')
    assert load_settings(env=env, cwd=cwd).tls.ca_file is None


def test_key_file_needs_cert_file(env: dict[str, str], cwd: Path) -> None:
    write(cwd / "key.pem", "x")
    with pytest.raises(config_error, match=r"tls\.key_file needs tls\.cert_file"):
        load_settings(env=env, cwd=cwd, overrides={"tls.key_file": "key.pem"})


# --------------------------------------------------------------------------- rows


def test_as_rows_masks_the_secret_and_gives_json_values(env: dict[str, str], cwd: Path) -> None:
    path = write(cwd / "almanet.toml", FULL_FILE)
    settings = load_settings(env=env, cwd=cwd)
    rows = settings.as_rows()
    assert [key for key, _, _ in rows] == list(KEYS)
    by_key = {key: (value, source) for key, value, source in rows}
    assert by_key["nsq.nsqd"] == (["file-a:4150", "file-b:4150"], f"file:{path}")
    assert by_key["auth.secret"] == ("***", f"file:{path}")
    assert by_key["tls.ca_file"] == (None, "default")
    assert by_key["timeouts.call"] == (10.0, f"file:{path}")
    assert dict((k, v) for k, v, _ in settings.as_rows(reveal_secrets=True))["auth.secret"] == "s3cret"
    assert "s3cret" not in repr(settings)


def test_value_by_dotted_key(env: dict[str, str], cwd: Path) -> None:
    settings = load_settings(env=env, cwd=cwd)
    assert settings.value("timeouts.connect") == 5.0
    with pytest.raises(KeyError, match=r"timeouts\.connect"):
        settings.value("timeouts.conect")


# --------------------------------------------------------------------------- the example file


def test_example_file_equals_the_defaults(env: dict[str, str], cwd: Path) -> None:
    example = REPO_ROOT / "almanet.toml.example"
    from_example = load_settings(example, env=env, cwd=cwd)
    assert from_example == load_settings(env=env, cwd=cwd)
    assert from_example.config_file == example
    assert any(source.startswith("file:") for source in from_example.sources.values())


def test_example_file_mentions_every_key_and_variable() -> None:
    text = (REPO_ROOT / "almanet.toml.example").read_text(encoding="utf-8")
    for key in KEYS:
        section, name = key.split(".")
        assert f"[{section}]" in text
        assert f"{name} = " in text, key
    for var in ENV_VARS:
        assert var in text


def test_example_file_documents_every_key_of_the_table_in_its_section() -> None:
    """Each key of the one table is set, or shown commented out, under its own [section]."""
    import tomllib

    from almanet._settings.config import TABLE

    text = (REPO_ROOT / "almanet.toml.example").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    blocks = dict(re.findall(r"^\[(\w+)\]\n(.*?)(?=^\[|\Z)", text, flags=re.M | re.S))
    for key in TABLE:
        assert key.section in blocks, f"[{key.section}] is missing from almanet.toml.example"
        commented = re.search(rf"^#\s*{re.escape(key.short)} = ", blocks[key.section], flags=re.M)
        assert key.short in data.get(key.section, {}) or commented, f"{key.name} is not documented"
        if key.kind in ("seconds", "bool") and key.short in data[key.section]:
            assert data[key.section][key.short] == key.default, f"{key.name}: the example differs from the default"
        if key.env:
            assert key.env in blocks[key.section], f"{key.name}: its variable {key.env} is not mentioned"
    assert len({key.name for key in TABLE}) == len(TABLE)


def test_serve_http_and_log_format_are_checked(env: dict[str, str], cwd: Path) -> None:
    assert load_settings(env=env, cwd=cwd).serve_http is None
    assert load_settings(env=env, cwd=cwd, overrides={"serve.http": "[::1]:9100"}).serve_http == "[::1]:9100"
    assert load_settings(env=env, cwd=cwd, overrides={"serve.http": ""}).serve_http is None
    path = write(cwd / "almanet.toml", '[serve]\nhttp = "nowhere"\n')
    with pytest.raises(config_error, match=r"almanet.toml:2: serve.http"):
        load_settings(path, env=env, cwd=cwd)
    write(path, '[log]\nformat = "yaml"\n')
    with pytest.raises(config_error, match=r'log.format must be "text" or "json", got .yaml.'):
        load_settings(path, env=env, cwd=cwd)


# --------------------------------------------------------------------------- liveness


def test_liveness_from_file_env_and_defaults_reach_the_connection_options(env: dict[str, str], cwd: Path) -> None:
    from almanet._settings.configure import connection_options

    defaults = connection_options(load_settings(env=env, cwd=cwd))
    assert (defaults.heartbeat_interval_ms, defaults.silent_after, defaults.ack_timeout) == (30_000, None, 1.0)
    assert defaults.read_timeout == 61  # two missed heartbeats and a second
    path = write(cwd / "almanet.toml", "[liveness]\nheartbeat = 2\nsilent_after = 3.5\nack_timeout = 0.25\n")
    settings = load_settings(path, env=env, cwd=cwd)
    assert settings.sources["liveness.heartbeat"] == f"file:{path}"
    options = connection_options(settings)
    assert (options.heartbeat_interval_ms, options.read_timeout, options.ack_timeout) == (2000, 3.5, 0.25)
    # the environment wins over the file, and its strings are numbers
    settings = load_settings(path, env={**env, "ALMANET_HEARTBEAT": "1.5", "ALMANET_ACK_TIMEOUT": "0.5"}, cwd=cwd)
    assert (settings.heartbeat, settings.ack_timeout, settings.silent_after) == (1.5, 0.5, 3.5)
    assert settings.sources["liveness.heartbeat"] == "env:ALMANET_HEARTBEAT"
    assert connection_options(settings).heartbeat_interval_ms == 1500


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"ALMANET_HEARTBEAT": "0.5"}, r"liveness.heartbeat must be between 1 and 60 seconds .*got 0.5"),
        ({"ALMANET_HEARTBEAT": "61"}, r"max-heartbeat-interval"),
        ({"ALMANET_HEARTBEAT": "fast"}, r"\$ALMANET_HEARTBEAT: liveness.heartbeat must be a number of seconds"),
        ({"ALMANET_HEARTBEAT": "nan"}, r"positive number of seconds"),
        ({"ALMANET_ACK_TIMEOUT": "-1"}, r"liveness.ack_timeout must be a positive number"),
        (
            {"ALMANET_HEARTBEAT": "5", "ALMANET_SILENT_AFTER": "5"},
            r"liveness.silent_after \(5 s\) must be longer than liveness.heartbeat \(5 s\)",
        ),
    ],
)
def test_liveness_values_are_checked(env: dict[str, str], cwd: Path, extra: dict[str, str], fragment: str) -> None:
    with pytest.raises(config_error, match=fragment):
        load_settings(env={**env, **extra}, cwd=cwd)


def test_liveness_keywords_of_a_session_are_checked_and_applied() -> None:
    import almanet
    from almanet._nsq.options import ConnectionOptions
    from almanet._wire.errors import invalid_argument

    session = almanet.new_session("127.0.0.1:1", heartbeat=2, silent_after=4.5, ack_timeout=0.2)
    options = session.broker.options
    assert (options.heartbeat_interval_ms, options.read_timeout, options.ack_timeout) == (2000, 4.5, 0.2)
    # given with options, the keywords replace only what they name
    base = ConnectionOptions(connect_timeout=1.5)
    options = almanet.new_session("127.0.0.1:1", options=base, heartbeat=3).broker.options
    assert (options.connect_timeout, options.heartbeat_interval_ms) == (1.5, 3000)
    with pytest.raises(invalid_argument, match="longer than the heartbeat interval"):
        almanet.new_session("127.0.0.1:1", heartbeat=5, silent_after=2)
    with pytest.raises(invalid_argument, match=r"heartbeat_interval_ms must be -1 \(off\) or between 1000 and 60000"):
        almanet.new_session("127.0.0.1:1", heartbeat=120)
    with pytest.raises(invalid_argument, match="ack_timeout"):
        almanet.new_session("127.0.0.1:1", ack_timeout=float("nan"))


def test_a_producer_takes_its_ack_bound_from_the_options() -> None:
    from almanet._nsq.options import ConnectionOptions
    from almanet._nsq.producer import Producer

    assert Producer(["127.0.0.1:1"]).ack_timeout == 1.0
    assert Producer(["127.0.0.1:1"], ConnectionOptions(ack_timeout=0.3)).ack_timeout == 0.3
    assert Producer(["127.0.0.1:1"], ConnectionOptions(ack_timeout=0.3), ack_timeout=2).ack_timeout == 2
