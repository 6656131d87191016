"""Where the fixtures find nsqd, what they say when there is none, and ``almanet testing install-nsqd``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from almanet.testing import NsqToolNotFound, find_tool, install_dir
from tests.cli.conftest import almanet, clean_env


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """One candidate nsqd in each place the search looks, and an environment that sees none yet."""
    for variable in ("ALMANET_NSQD_BIN", "ALMANET_NSQLOOKUPD_BIN"):
        monkeypatch.delenv(variable, raising=False)
    project = tmp_path / "project"
    cwd = project / "sub" / "dir"
    cwd.mkdir(parents=True)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    monkeypatch.chdir(cwd)
    return {
        "env": tmp_path / "pinned" / "nsqd",
        "path": tmp_path / "path" / "nsqd",
        "project": project / ".tools" / "bin" / "nsqd",
        "installed": tmp_path / "data" / "almanet" / "bin" / "nsqd",
    }


def test_search_order(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert install_dir() == places["installed"].parent
    # added from the last place to the first: each new one wins over those found before
    executable(places["installed"])
    assert find_tool("nsqd") == str(places["installed"])
    executable(places["project"])  # .tools/bin of a parent of the current directory
    assert find_tool("nsqd") == str(places["project"])
    executable(places["path"])
    assert find_tool("nsqd") == str(places["path"])
    monkeypatch.setenv("ALMANET_NSQD_BIN", str(executable(places["env"])))
    assert find_tool("nsqd") == str(places["env"])


def test_nsqlookupd_next_to_the_pinned_nsqd(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    executable(places["path"].with_name("nsqlookupd"))
    monkeypatch.setenv("ALMANET_NSQD_BIN", str(executable(places["env"])))
    assert find_tool("nsqlookupd") == str(places["path"].with_name("nsqlookupd"))  # none beside it yet
    beside = executable(places["env"].with_name("nsqlookupd"))
    assert find_tool("nsqlookupd") == str(beside)
    monkeypatch.setenv("ALMANET_NSQLOOKUPD_BIN", str(places["path"].with_name("nsqlookupd")))
    assert find_tool("nsqlookupd") == str(places["path"].with_name("nsqlookupd"))


def test_a_pinned_path_that_is_no_binary_is_an_error(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    executable(places["path"])  # there is another: still, a wrong pin is said, not skipped
    monkeypatch.setenv("ALMANET_NSQD_BIN", str(places["env"]))
    with pytest.raises(NsqToolNotFound, match=r"ALMANET_NSQD_BIN=.*pinned/nsqd is not an executable file"):
        find_tool("nsqd")


def test_nothing_found_says_how_to_get_it(places: dict[str, Path]) -> None:
    places["project"].parent.mkdir(parents=True)
    places["project"].write_text("not executable")
    with pytest.raises(NsqToolNotFound) as caught:
        find_tool("nsqd")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("nsqd not found (looked at $ALMANET_NSQD_BIN, PATH, ./.tools/bin")
    assert (
        f"run `almanet testing install-nsqd` (builds nsqd and nsqlookupd v1.3.0 with Go into {install_dir()})"
        in message
    )
    assert "or put the nsq v1.3.0 release binaries on PATH (https://nsq.io/deployment/installing.html)" in message


# -- almanet testing install-nsqd --------------------------------------------------------------


def go_caches() -> dict[str, str]:
    """The Go build and module caches ``make setup`` filled: with HOME in tmp, Go would start cold."""
    from almanet.testing._tools import find_go

    go = find_go()
    if go is None:
        pytest.skip("Go is not installed (make setup needs it too)")
    names = ("GOCACHE", "GOMODCACHE", "GOPATH")
    out = subprocess.run([go, "env", *names], capture_output=True, text=True, check=True, timeout=60).stdout
    return dict(zip(names, out.split("\n"), strict=False))


def test_install_nsqd_builds_v1_3_0(tmp_path: Path) -> None:
    target = tmp_path / "bin"
    env = clean_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"), **go_caches())
    done = almanet("testing", "install-nsqd", "--dir", str(target), env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == [str(target / "nsqd"), str(target / "nsqlookupd")]
    stderr = done.stderr.decode()
    assert f"building nsqd, nsqlookupd v1.3.0 into {target} with go1." in stderr
    assert f"set ALMANET_NSQD_BIN={target / 'nsqd'} to use this build" in stderr
    version = subprocess.run([target / "nsqd", "--version"], capture_output=True, text=True, check=True, timeout=30)
    assert version.stdout.startswith("nsqd v1.3.0")
    again = almanet("testing", "install-nsqd", "--dir", str(target), env=env, cwd=tmp_path)
    assert again.returncode == 0
    assert again.stdout.decode().strip() == f"nsqd and nsqlookupd are already in {target} (--force rebuilds them)"


def test_install_nsqd_into_the_folder_the_fixtures_search(tmp_path: Path) -> None:
    """Without --dir it builds into the install folder, and find_tool then finds it there."""
    env = clean_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"), **go_caches())
    done = almanet("testing", "install-nsqd", env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    built = tmp_path / "data" / "almanet" / "bin" / "nsqd"
    assert done.stdout.decode().split()[0] == str(built)
    probe = "from almanet.testing import find_tool; print(find_tool('nsqd'))"
    env["PATH"] = os.path.dirname(sys.executable)  # no other nsqd to find
    found = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert found.stdout.strip() == str(built), found.stderr


def test_install_nsqd_without_go(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    done = almanet(
        "testing", "install-nsqd", "--dir", str(tmp_path / "bin"), "--go", "/no/such/go", env=env, cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.decode().strip() == (
        "error: no go command at '/no/such/go': give the path of Go's go binary (Go >= 1.21)"
    )
    assert not (tmp_path / "bin").exists()


def test_install_nsqd_with_an_old_go(tmp_path: Path) -> None:
    old_go = tmp_path / "go"
    old_go.write_text('#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo go1.19.4\n')
    old_go.chmod(0o755)
    env = clean_env(tmp_path)
    done = almanet(
        "testing", "install-nsqd", "--dir", str(tmp_path / "bin"), "--go", str(old_go), env=env, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "error: Go >= 1.21 is needed to build nsqd" in done.stderr.decode()
    assert "says 'go1.19.4': upgrade Go" in done.stderr.decode()
