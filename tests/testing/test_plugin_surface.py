"""almanet.testing's public names, its registration as a pytest plugin, and what loading it costs."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import almanet.testing

PUBLIC = [
    "Call",
    "Expectation",
    "Message",
    "NsqCluster",
    "NsqProcessError",
    "NsqToolNotFound",
    "NsqdProcess",
    "NsqlookupdProcess",
    "expect_call",
    "expect_message",
    "find_tool",
    "free_port",
    "install_dir",
    "kill_leftovers",
    "new_name",
    "serving",
    "start_cluster",
    "start_nsqd",
    "start_nsqlookupd",
    "wait_until",
]


def test_public_names_are_pinned() -> None:
    assert almanet.testing.__all__ == PUBLIC
    assert dir(almanet.testing) == PUBLIC
    for name in PUBLIC:
        assert getattr(almanet.testing, name).__module__.startswith("almanet.testing.")


def test_registered_as_a_pytest_plugin() -> None:
    entry_points = importlib.metadata.entry_points(group="pytest11")
    assert [e.value for e in entry_points if e.name == "almanet"] == ["almanet.testing.plugin"]


def test_loading_the_plugin_imports_nothing_of_almanet() -> None:
    """pytest loads it in every project where almanet is installed: it must cost nothing there."""
    probe = (
        "import sys, pytest; before = set(sys.modules); import almanet.testing.plugin; "
        "print(sorted(m for m in set(sys.modules) - before if m.startswith(('almanet', 'pydantic', 'urllib'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['almanet', 'almanet.testing', 'almanet.testing.plugin']"


def test_the_fixtures_pytest_sees(tmp_path: Path) -> None:
    """In a project of its own (no conftest), pytest lists the plugin's fixtures."""
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-q", "-p", "no:cacheprovider", "test_nothing.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    listed = {line.split()[0] for line in done.stdout.splitlines() if line and not line.startswith(" ")}
    for fixture in (
        "nsqd",
        "fresh_nsqd",
        "nsqd_factory",
        "nsqlookupd",
        "nsq_cluster",
        "almanet_nsqd",
        "served",
        "session",
        "expect_call",
        "expect_message",
    ):
        assert fixture in listed, done.stdout[-2000:]
