"""Helpers for the contract tests: the official AsyncAPI parser (node, from .tools/npm) and a bus.

The parser is installed by scripts/setup.sh (`npm ci` of scripts/asyncapi/package-lock.json);
without it these checks skip locally and fail in CI, where setup must have installed it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import call_once, nsq_env, start, stop
from tests.support.nsqproc import REPO_ROOT, NsqdProcess, start_nsqd, wait_until

NPM_ROOT = REPO_ROOT / ".tools" / "npm"
VALIDATE = REPO_ROOT / "scripts" / "asyncapi" / "validate.mjs"


def _parser_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (scripts/setup.sh installs nodejs and npm with apt-get when root)"
    if not (NPM_ROOT / "node_modules" / "@asyncapi" / "parser").is_dir():
        return "the AsyncAPI parser is not in .tools/npm: run make setup"
    return None


def validate(*documents: Path) -> list[dict[str, Any]]:
    """Each document's verdict from the official parser and the spec's JSON schema (one dict each)."""
    missing = _parser_missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    result = subprocess.run(
        ["node", str(VALIDATE), *map(str, documents)],
        env={**os.environ, "ALMANET_NPM_ROOT": str(NPM_ROOT)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr.decode()
    verdicts = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(verdicts) == len(documents), result.stderr.decode()
    return verdicts


def refs_resolve(document: dict[str, Any]) -> list[str]:
    """The local ``$ref``s of ``document`` that do not resolve (empty: all do)."""
    broken: list[str] = []

    def resolve(ref: str) -> bool:
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and not resolve(ref):
                broken.append(ref)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(document)
    return broken


Bus = tuple[NsqdProcess, dict[str, str], Path]


def live_instances(address: str) -> int:
    """How many service instances answer discovery on ``address`` now."""
    import asyncio

    import almanet

    async def count() -> int:
        async with almanet.new_session(address) as session:
            return len(await session.multicall("_api_schema_.client", None, timeout=0.5))

    return asyncio.run(count())


def serve_until_ready(env: dict[str, str], cwd: Path, target: str, uri: str) -> Any:
    """``almanet serve TARGET`` answering ``uri`` (polled with a short call, not slept for)."""
    proc = start("serve", target, env=env, cwd=cwd)
    addresses = (env["ALMANET_NSQD"],)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"almanet serve {target} exited: {proc.stderr.read().decode()}")
        try:
            call_once(addresses, uri, "x")
        except TimeoutError:
            return False
        except Exception:  # a remote error (a validation error, say) means it is served
            return True
        return True

    wait_until(ready, 10, message=f"almanet serve {target} did not answer")
    return proc


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    """One nsqd serving the example, the typed greeting and version 1 of the contracts shop."""
    tmp = tmp_path_factory.mktemp("contracts")
    nsqd = start_nsqd()
    env = nsq_env(tmp, nsqd)
    procs = [
        serve_until_ready(env, tmp, "tests.assets.contracts_v1:shop", "net.contracts.shout"),
        serve_until_ready(env, tmp, "services.example:example_service", "net.example.greeting"),
        serve_until_ready(env, tmp, "services.greeting_impl:greeting_service", "net.example.typed.greet"),
    ]
    try:
        yield nsqd, env, tmp
    finally:
        for proc in procs:
            stop(proc)
        nsqd.close()
