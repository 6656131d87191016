"""mypy --strict and pyright see the contracts: revealed types, mistyped calls, the README's blocks.

Each checker runs once per test on a folder of small files, with this checkout on its path (the
editable install's import hook is invisible to both checkers).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.nsqproc import REPO_ROOT
from tests.typed._blocks import python_blocks

VENV_BIN = Path(sys.executable).parent
TIMEOUT = 300

TYPED_CALLER = """\
import almanet
from services.greeting_api import Greeting, greet, greeting_service


@greeting_service.procedure
async def shout(session: almanet.Almanet, payload: str) -> str:
    return payload.upper()


async def main(session: almanet.Almanet) -> None:
    result = await session.call(greet, Greeting(name="Aidar"))
    reveal_type(result.payload)
    by_uri = await session.call("net.example.typed.greet", {"name": "Aidar"}, result=int)
    reveal_type(by_uri.payload)
    replies = await session.multicall(greet, Greeting(name="Aidar"))
    reveal_type(replies)
    reveal_type(shout)
    print(result.payload.text.upper(), by_uri.payload + 1)
"""

MISTYPED_CALLER = """\
import almanet
from services.greeting_api import Greeted, Greeting, greet


async def main(session: almanet.Almanet) -> None:
    await session.call(greet, "Aidar")
    result = await session.call(greet, Greeting(name="Aidar"))
    print(result.payload.no_such_attribute)
    almanet.new_session("localhost:4150", defualt_timeout=5)


@greet.implements
async def wrong_payload(session: almanet.Almanet, payload: str) -> Greeted:
    raise NotImplementedError
"""
# the wrong payload, the wrong attribute, the mistyped option, an implementation of other types
MISTYPED_LINES = {6, 8, 9, 12}


def _mypy(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "mypy"), "--strict", "--no-incremental", "--python-version", "3.11", str(folder)],
        cwd=REPO_ROOT,
        env={"PATH": str(VENV_BIN), "MYPYPATH": str(REPO_ROOT), "HOME": str(folder)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _pyright(folder: Path) -> tuple[int, list[dict[str, object]]]:
    config = {
        "extraPaths": [str(REPO_ROOT)],
        "pythonVersion": "3.11",
        "typeCheckingMode": "strict",
        "venvPath": str(REPO_ROOT),
        "venv": ".venv",
    }
    (folder / "pyrightconfig.json").write_text(json.dumps(config))
    done = subprocess.run(
        [str(VENV_BIN / "pyright"), "--outputjson", "-p", str(folder / "pyrightconfig.json"), str(folder)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright gave no JSON report ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return done.returncode, report["generalDiagnostics"]


def test_the_checkers_see_the_typed_result(tmp_path: Path) -> None:
    (tmp_path / "typed_caller.py").write_text(TYPED_CALLER)
    mypy = _mypy(tmp_path)
    revealed = [line.split("Revealed type is ")[1] for line in mypy.stdout.splitlines() if "Revealed type" in line]
    assert revealed[0] == '"services.greeting_api.Greeted"', mypy.stdout
    assert revealed[1] in ('"int"', '"builtins.int"'), mypy.stdout
    assert "CallResult[services.greeting_api.Greeted]" in revealed[2] and "rpc_error" in revealed[2], mypy.stdout
    assert "def (session: almanet._calling.session.Almanet, payload: " in revealed[3], mypy.stdout
    assert revealed[3].endswith('Coroutine[Any, Any, str]"'), mypy.stdout
    assert " error: " not in mypy.stdout, mypy.stdout

    _, diagnostics = _pyright(tmp_path)
    messages = [str(d["message"]) for d in diagnostics if d["severity"] == "information"]
    assert messages[0] == 'Type of "result.payload" is "Greeted"', messages
    assert messages[1] == 'Type of "by_uri.payload" is "int"', messages
    assert messages[2] == 'Type of "replies" is "list[CallResult[Greeted] | rpc_error]"', messages
    assert messages[3].startswith('Type of "shout" is "(session: Almanet, payload: str) -> Coroutine'), messages
    assert not [d for d in diagnostics if d["severity"] == "error"], diagnostics


def test_a_mistyped_call_fails_both_checkers(tmp_path: Path) -> None:
    (tmp_path / "mistyped_caller.py").write_text(MISTYPED_CALLER)
    mypy = _mypy(tmp_path)
    assert mypy.returncode == 1
    lines = {int(line.split(":")[1]) for line in mypy.stdout.splitlines() if ": error: " in line}
    assert lines == MISTYPED_LINES, mypy.stdout
    assert "no_such_attribute" in mypy.stdout and "defualt_timeout" in mypy.stdout

    code, diagnostics = _pyright(tmp_path)
    assert code == 1
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert {int(d["range"]["start"]["line"]) + 1 for d in errors} == MISTYPED_LINES, errors  # type: ignore[index]


def test_the_readme_python_blocks_pass_both_checkers(tmp_path: Path) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 8
    for index, block in enumerate(blocks):
        (tmp_path / f"readme_block_{index:02d}.py").write_text(block)
    mypy = _mypy(tmp_path)
    assert mypy.returncode == 0, mypy.stdout
    code, diagnostics = _pyright(tmp_path)
    assert code == 0 and not diagnostics, diagnostics
