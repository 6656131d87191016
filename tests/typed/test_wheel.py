"""The wheel carries ``almanet/py.typed``: without it mypy and pyright treat ``import almanet`` as untyped."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.nsqproc import REPO_ROOT


@pytest.mark.timeout(180)
def test_the_wheel_ships_py_typed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("almanet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "almanet/py.typed" in names
    assert "almanet/_calling/contract.py" in names
