"""``almanet stubs``: a generated module that passes mypy --strict and ruff, and gets typed replies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import almanet, clean_env
from tests.contracts.conftest import Bus
from tests.support.nsqproc import REPO_ROOT

pytestmark = pytest.mark.timeout(120)

BIN = Path(sys.executable).parent

CALLER = """\
import asyncio
import sys

import almanet

import shop


async def main(address: str) -> None:
    async with almanet.new_session(address) as session:
        order = shop.Order(item="tea", quantity=3, ship_to=shop.Address(city="Kazan"))
        placed = await session.call(shop.order, order, timeout=10)
        print(type(placed.payload).__name__, placed.payload.order_id, placed.payload.ship_to.city)
        shouted = await session.call(shop.shout, "hi", timeout=10)
        print(shouted.payload.lower())
        try:
            await session.call(shop.shout, "", timeout=10)
        except shop.empty as error:
            print("declared", error.name)
        try:
            await session.call(shop.order, shop.Order(item="gold", quantity=1, ship_to=order.ship_to), timeout=10)
        except shop.out_of_stock as error:
            print("out of stock:", error.item)


asyncio.run(main(sys.argv[1]))
"""

MISTYPED = """\
import almanet

import shop


async def wrong_payload(session: almanet.Almanet) -> None:
    await session.call(shop.shout, 42)


async def wrong_result(session: almanet.Almanet) -> None:
    result = await session.call(shop.shout, "hi")
    length: int = result.payload
"""


def _stub_from_saved(tmp_path: Path) -> Path:
    env = clean_env(tmp_path, PYTHONPATH=str(REPO_ROOT))
    saved = tmp_path / "shop.yaml"
    result = almanet("asyncapi", "tests.assets.contracts_v1:shop", "-o", "yaml", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    saved.write_bytes(result.stdout)
    made = almanet("stubs", "net.contracts", "--from", str(saved), "--output", "out/shop.py", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr.decode()
    assert "wrote out/shop.py: 4 procedure(s) and 2 topic(s) under net.contracts" in made.stderr.decode()
    return tmp_path / "out" / "shop.py"


def _mypy(folder: Path, *files: str) -> subprocess.CompletedProcess[str]:
    # the repo on MYPYPATH and as cwd (its pyproject's mypy overrides for almanet's own modules):
    # mypy does not follow the editable install's import hook
    env = {**os.environ, "MYPYPATH": f"{folder}{os.pathsep}{REPO_ROOT}"}
    return subprocess.run(
        [str(BIN / "mypy"), "--strict", "--no-incremental", *(str(folder / f) for f in files)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def test_a_stub_module_passes_mypy_strict_and_ruff_and_a_mistyped_payload_is_a_type_error(tmp_path: Path) -> None:
    stub = _stub_from_saved(tmp_path)
    folder = stub.parent
    (folder / "caller.py").write_text(CALLER)
    (folder / "mistyped.py").write_text(MISTYPED)
    clean = _mypy(folder, "shop.py", "caller.py")
    assert clean.returncode == 0, clean.stdout
    wrong = _mypy(folder, "mistyped.py")
    assert wrong.returncode == 1
    errors = {int(line.split(":")[1]): line for line in wrong.stdout.splitlines() if ": error: " in line}
    assert sorted(errors) == [7, 12], wrong.stdout  # the int payload of shout, its str result into an int
    assert '"call" of "Almanet"' in errors[7]
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in errors[12]
    lint = subprocess.run(
        [str(BIN / "ruff"), "check", "--isolated", "--select", "E,F,W,I,UP,B,RUF", "shop.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout
    formatted = subprocess.run(
        [str(BIN / "ruff"), "format", "--isolated", "--check", "shop.py"], cwd=folder, capture_output=True, check=False
    )
    assert formatted.returncode == 0, formatted.stdout


def test_stubs_from_the_live_bus_give_a_caller_typed_replies(bus: Bus) -> None:
    nsqd, env, cwd = bus
    folder = cwd / "live-stubs"
    made = almanet("stubs", "net.contracts", "--output", str(folder / "shop.py"), env=env, cwd=cwd, timeout=20)
    assert made.returncode == 0, made.stderr.decode()
    assert "from the live bus" in (folder / "shop.py").read_text()
    (folder / "caller.py").write_text(CALLER)
    run = subprocess.run(
        [sys.executable, "caller.py", nsqd.tcp_address],
        cwd=folder,
        env={**env, "PYTHONPATH": f"{folder}{os.pathsep}{REPO_ROOT}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["Placed 9 Kazan", "hi", "declared empty", "out of stock: gold"]


def test_stubs_refuse_what_they_cannot_write(tmp_path: Path) -> None:
    stub = _stub_from_saved(tmp_path)
    env = clean_env(tmp_path, PYTHONPATH=str(REPO_ROOT))
    saved = str(tmp_path / "shop.yaml")
    nothing = almanet("stubs", "net.other", "--from", saved, "--output", "x.py", env=env, cwd=tmp_path)
    assert nothing.returncode == 2
    assert "no procedure under 'net.other'; the document has net.contracts.invert" in nothing.stderr.decode()
    assert not (tmp_path / "x.py").exists()
    bad_name = almanet("stubs", "net.contracts", "--from", saved, "--output", "my-stub.txt", env=env, cwd=tmp_path)
    assert bad_name.returncode == 2 and b"name a Python module file" in bad_name.stderr
    before = stub.read_text()
    bad_prepath = almanet("stubs", "net..x", "--from", saved, "--output", str(stub), env=env, cwd=tmp_path)
    assert bad_prepath.returncode == 2 and stub.read_text() == before


TOPICS_CHECK = """\
import json

from almanet._contracts.asyncapi import ServiceDescription, build_document
from almanet._contracts.compat import compare

import shop as stub
from tests.assets.contracts_v1 import shop


def document(service):
    topics = tuple(t.describe() for t in service.topics.values())
    description = ServiceDescription(prepath="net.contracts", procedures=(), servers=(), topics=topics)
    return build_document([description], title="shop")


placed = stub.interface.topics[("orders.placed", "produces")].message.schema()
print(json.dumps({
    "declared": sorted([*key, t.channel, t.description] for key, t in stub.interface.topics.items()),
    "placed": [placed["title"], sorted(placed["required"])],
    "breaking": [str(c) for c in compare(document(shop), document(stub.interface)) if c.breaking],
}))
"""


def test_stubs_declare_the_topics_the_service_declared(tmp_path: Path) -> None:
    """The stub's interface produces and consumes what the shop does, with models that describe the same messages.

    In a child process: importing the shop and the stub here would define more ``rpc_error``
    classes named ``out_of_stock``, and the newest of a name is the one a caller raises.
    """
    stub = _stub_from_saved(tmp_path)
    (stub.parent / "check_topics.py").write_text(TOPICS_CHECK)
    run = subprocess.run(
        [sys.executable, "check_topics.py"],
        cwd=stub.parent,
        env={**os.environ, "PYTHONPATH": f"{stub.parent}{os.pathsep}{REPO_ROOT}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["declared"] == [
        ["orders.placed", "produces", None, "One message per placed order."],
        ["stock.updates", "consumes", "shop", "The warehouse's counts."],
    ]
    assert seen["placed"] == ["Placed", ["order_id", "ship_to"]]
    assert seen["breaking"] == []
