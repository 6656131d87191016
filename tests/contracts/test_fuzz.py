"""``almanet fuzz``: payloads from the schema against a real served procedure; failures shrunk."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import almanet
from tests.contracts.conftest import Bus

pytestmark = pytest.mark.timeout(90)


def _fuzz(bus: Bus, *args: str) -> tuple[int, dict[str, object]]:
    _, env, cwd = bus
    result = almanet("fuzz", *args, "-o", "json", env=env, cwd=cwd, timeout=80)
    assert result.stdout, result.stderr.decode()
    return result.returncode, json.loads(result.stdout)


def test_a_procedure_that_raises_only_declared_errors_passes(bus: Bus) -> None:
    code, report = _fuzz(bus, "net.contracts.shout", "--examples", "60")
    assert code == 0, report
    assert report["failures"] == [] and report["calls"] >= 60 and report["budget_exhausted"] is False
    assert report["declared_errors"] >= 1  # the empty string was tried: an answer, not a failure
    code, typed = _fuzz(bus, "net.contracts.order", "--examples", "30")
    assert code == 0 and typed["failures"] == [], typed


def test_a_crash_on_a_valid_payload_is_found_shrunk_and_pasteable(bus: Bus) -> None:
    code, report = _fuzz(bus, "net.contracts.invert")
    assert code == 11
    (failure,) = report["failures"]
    assert failure["kind"] == "internal error" and failure["payload"] == 0
    assert failure["command"] == "almanet call net.contracts.invert 0"
    _, env, cwd = bus
    pasted = almanet(*failure["command"].split()[1:], env=env, cwd=cwd)
    assert pasted.returncode == 1 and b"InternalError" in pasted.stderr


def test_a_result_outside_the_return_schema_is_a_failure(bus: Bus) -> None:
    code, report = _fuzz(bus, "net.contracts.total")
    assert code == 11
    (failure,) = report["failures"]
    assert failure["kind"].startswith("result does not match the return schema")
    assert failure["payload"] == [101]  # shrunk: the smallest list whose sum passes 100
    assert failure["command"] == "almanet call net.contracts.total '[101]'"


def test_the_calls_are_bounded_and_an_unknown_procedure_exits_3(bus: Bus) -> None:
    code, report = _fuzz(bus, "net.contracts.shout", "--max-calls", "7")
    assert code == 0 and report["calls"] == 7 and report["budget_exhausted"] is True
    _, env, cwd = bus
    missing = almanet("fuzz", "net.contracts.nothing", env=env, cwd=cwd, timeout=20)
    assert missing.returncode == 3 and b"no live service serves net.contracts.nothing" in missing.stderr
    bad = almanet("fuzz", "net.contracts.shout", "--timeout", "nan", env=env, cwd=cwd)
    assert bad.returncode == 2
