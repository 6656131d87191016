"""The plugin as a user meets it: a project of their own, run with pytest in a subprocess.

The project is made in a temp dir: ``services/example.py`` and one test file, which is the README's
test block exactly as written (no conftest.py, nothing from our tests/). It runs against the
installed almanet, whose entry point brings the fixtures, under pytest-asyncio and under anyio's
plugin (each run with the other plugin disabled). It must pass with the real service, fail with a
broken one, and leave no nsqd behind: the nsqd binary it is given records each PID it runs as, and
none of those may be alive after (nor any process using the run's TMPDIR).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from almanet.testing import find_tool
from tests.support.nsqproc import REPO_ROOT

README = REPO_ROOT / "README.md"
MARK = "<!-- the README's test: tests/testing/test_user_project.py runs this block as it is -->"
EXAMPLE = REPO_ROOT / "services" / "example.py"
ASYNCIO_MARK = "pytestmark = pytest.mark.asyncio"


def readme_test() -> str:
    """The ```python block right after the README's mark."""
    text = README.read_text(encoding="utf-8")
    assert MARK in text, "the README lost its marked test block"
    found = re.match(r"\s*```python\n(.*?)\n```", text.split(MARK, 1)[1], re.S)
    assert found, "the README's mark is not followed by a ```python block"
    return found.group(1) + "\n"


def broken_example() -> str:
    """services/example.py with two bugs: a wrong greeting, and guests let in."""
    source = EXAMPLE.read_text(encoding="utf-8")
    broken = source.replace('f"Hello, {payload}!"', 'f"Hello {payload}"').replace(
        'if payload == "guest":', 'if payload == "nobody":'
    )
    assert broken.count("Hello {payload}") == 1 and "nobody" in broken
    return broken


def make_project(root: Path, example: str, plugin: str) -> Path:
    project = root / "project"
    (project / "services").mkdir(parents=True)
    (project / "services" / "__init__.py").write_text("")
    (project / "services" / "example.py").write_text(example)
    test = readme_test()
    assert ASYNCIO_MARK in test
    if plugin == "anyio":
        test = test.replace(ASYNCIO_MARK, "pytestmark = pytest.mark.anyio")
    (project / "test_example.py").write_text(test)
    return project


def user_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A user's environment: none of our ALMANET_* or PYTHONPATH; temp files under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALMANET_") and k != "PYTHONPATH"}
    tmp.mkdir(exist_ok=True)
    env.update(TMPDIR=str(tmp), NO_COLOR="1", **extra)
    return env


def recording_nsqd(folder: Path, pids: Path) -> Path:
    """An ``nsqd`` that writes its PID to ``pids`` and becomes the real nsqd (exec keeps the PID)."""
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "nsqd"
    wrapper.write_text(f'#!/bin/sh\necho $$ >> "{pids}"\nexec "{find_tool("nsqd")}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line mentions ``text`` (an nsqd's --data-path under the project's TMPDIR)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def run_pytest(project: Path, plugin: str, env: dict[str, str]) -> tuple[int, str]:
    other = {"asyncio": "anyio", "anyio": "asyncio"}[plugin]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", f"no:{other}"],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def assert_nothing_left(pids: Path, tmp: Path) -> None:
    started = [int(line) for line in pids.read_text().split()]
    assert started, "no nsqd was started: the project did not use the fixtures"
    assert not [pid for pid in started if alive(pid)], f"nsqd left running: {started}"
    assert not processes_mentioning(str(tmp)), "a process still uses the project's temp dir"


@pytest.mark.integration
@pytest.mark.parametrize("plugin", ["asyncio", "anyio"])
def test_the_readme_test_passes_on_the_real_service(tmp_path: Path, plugin: str) -> None:
    project = make_project(tmp_path, EXAMPLE.read_text(encoding="utf-8"), plugin)
    pids = tmp_path / "pids"
    env = user_env(tmp_path / "tmp", ALMANET_NSQD_BIN=str(recording_nsqd(tmp_path / "bin", pids)))
    code, output = run_pytest(project, plugin, env)
    assert code == 0, output
    assert re.search(r"\b3 passed in\b", output), output  # "3 passed, 1 warning in" before
    assert "Warning" not in output, output  # pytest-asyncio's PytestDeprecationWarning among others
    assert_nothing_left(pids, tmp_path / "tmp")


@pytest.mark.parametrize(
    ("ini", "expected"), [("", "function"), ("asyncio_default_fixture_loop_scope = module", "module")]
)
def test_the_plugin_sets_the_fixture_loop_scope_only_when_the_user_did_not(
    tmp_path: Path, ini: str, expected: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    if ini:
        (project / "pytest.ini").write_text(f"[pytest]\n{ini}\n")
    (project / "test_scope.py").write_text(
        "def test_scope(pytestconfig):\n"
        f"    assert pytestconfig.getini('asyncio_default_fixture_loop_scope') == {expected!r}\n"
    )
    code, output = run_pytest(project, "asyncio", user_env(tmp_path / "tmp"))
    assert code == 0 and "1 passed in" in output and "Warning" not in output, output


@pytest.mark.integration
@pytest.mark.parametrize("plugin", ["asyncio", "anyio"])
def test_the_readme_test_fails_on_a_broken_service(tmp_path: Path, plugin: str) -> None:
    project = make_project(tmp_path, broken_example(), plugin)
    pids = tmp_path / "pids"
    env = user_env(tmp_path / "tmp", ALMANET_NSQD_BIN=str(recording_nsqd(tmp_path / "bin", pids)))
    code, output = run_pytest(project, plugin, env)
    assert code == 1, output
    assert re.search(r"\b2 failed, 1 passed\b", output), output
    assert "FAILED test_example.py::test_greeting" in output
    assert "FAILED test_example.py::test_guest_is_denied" in output
    assert "'Hello Aidar' == 'Hello, Aidar!'" in output
    assert_nothing_left(pids, tmp_path / "tmp")


def test_the_project_finds_nsqd_in_its_tools_folder(tmp_path: Path) -> None:
    """No $ALMANET_NSQD_BIN, no nsqd on PATH: the project's own .tools/bin/nsqd is used."""
    project = make_project(tmp_path, EXAMPLE.read_text(encoding="utf-8"), "asyncio")
    pids = tmp_path / "pids"
    recording_nsqd(project / ".tools" / "bin", pids)
    env = user_env(tmp_path / "tmp", PATH=os.path.dirname(sys.executable), XDG_DATA_HOME=str(tmp_path / "data"))
    code, output = run_pytest(project, "asyncio", env)
    assert code == 0, output
    assert_nothing_left(pids, tmp_path / "tmp")


def test_without_nsqd_the_error_says_how_to_get_one(tmp_path: Path) -> None:
    project = make_project(tmp_path, EXAMPLE.read_text(encoding="utf-8"), "asyncio")
    env = user_env(tmp_path / "tmp", PATH=os.path.dirname(sys.executable), XDG_DATA_HOME=str(tmp_path / "data"))
    code, output = run_pytest(project, "asyncio", env)
    assert code == 1, output
    assert re.search(r"\b3 errors?\b", output), output
    assert "nsqd not found" in output
    assert "run `almanet testing install-nsqd`" in output
    assert "release binaries" in output
    # one line each, no traceback: the header of each error, then the sentence and nothing else
    errors = output.split("= ERRORS =", 1)[1].split("short test summary info", 1)[0]
    sections = re.split(r"\n_+ ERROR at setup of \w+ _+\n", errors)[1:]
    assert len(sections) == 3, output
    for section in sections:
        lines = [line for line in section.splitlines() if line.strip() and not line.startswith("=")]
        assert len(lines) == 1 and lines[0].startswith("nsqd not found (looked at "), output
    assert "Traceback" not in output and "find_tool" not in output and "During handling" not in output


def test_a_daemon_a_test_forgot_is_killed_at_the_end(tmp_path: Path) -> None:
    """The plugin's one autouse piece: nsqd left running by a test is killed, by PID, and reported."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_leak.py").write_text(
        "from almanet.testing import start_nsqd\n\n\ndef test_forgets_to_stop():\n    assert start_nsqd().running\n"
    )
    pids = tmp_path / "pids"
    env = user_env(tmp_path / "tmp", ALMANET_NSQD_BIN=str(recording_nsqd(tmp_path / "bin", pids)))
    code, output = run_pytest(project, "asyncio", env)
    assert code == 0, output
    [pid] = [int(line) for line in pids.read_text().split()]
    assert f"killed NSQ daemons left running by tests: pids [{pid}]" in output
    assert not alive(pid)


def test_a_failed_start_leaves_no_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from almanet.testing import NsqProcessError, start_nsqd

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # tempfile caches the temp dir it chose first
    with pytest.raises(NsqProcessError, match=r"nsqd exited with code \d+ before it was ready"):
        start_nsqd(extra_args=["--no-such-flag"])
    assert not list(tmp_path.iterdir())
