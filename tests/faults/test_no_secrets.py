"""What a caller learns when a procedure fails: what it sent may be quoted back, nothing else.

A procedure's return value can hold anything (a token, a row of someone else's data): a result
that does not match its annotation is described by its type only. A procedure that raises gives
the caller an InternalError naming the call, never the exception's text, a path or a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

import almanet
from almanet._wire.validation import TypeCheck
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess

SECRET = "tok_9f8e7d6c5b4a_do_not_leak"
PATHLIKE = re.compile(r"(/[\w.-]+){2,}|\.py\b|Traceback|line \d+")


class Account(pydantic.BaseModel):
    id: int
    owner: str

    @pydantic.field_validator("owner")
    @classmethod
    def no_tokens(cls, value: str) -> str:
        if value.startswith("tok_"):
            raise ValueError(f"owner {value} looks like a token")
        return value


def _service(prepath: str, addresses: tuple[str, ...]) -> almanet.Service:
    service = almanet.new_service(*addresses, prepath=prepath)

    @service.procedure
    async def count(payload: Any) -> int:
        return SECRET  # type: ignore[return-value]  # the defect under test: a wrong result type

    @service.procedure
    async def account(payload: Any) -> Account:
        return {"id": "not a number " + SECRET, "owner": SECRET}  # type: ignore[return-value]

    @service.procedure
    async def crash(payload: Any) -> None:
        raise RuntimeError(f"cannot open /srv/app/secrets.py with {SECRET}")

    @service.procedure
    async def echo(payload: int) -> int:
        return payload

    return service


def _assert_clean(text: str) -> None:
    assert SECRET not in text and "tok_" not in text, text
    assert not PATHLIKE.search(text), text


@pytest.mark.parametrize("procedure", ["count", "account", "crash"])
def test_a_failing_procedure_leaks_nothing(nsqd: NsqdProcess, unique_name: Callable[..., str], procedure: str) -> None:
    service = _service(unique_name("leak"), (nsqd.tcp_address,))

    async def scenario() -> almanet.rpc_error:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.rpc_error) as failed:
                await session.call(f"{service.prepath}.{procedure}", None, timeout=10)
            return failed.value

    error = run(scenario(), timeout=20)
    _assert_clean(str(error))
    _assert_clean(repr(error.args))
    if procedure != "crash":
        assert isinstance(error, almanet.ValidationError)
        assert "result" in str(error) and "str" in str(error)  # says what was wrong, by type


def test_the_callers_own_payload_may_be_quoted_back(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = _service(unique_name("leak"), (nsqd.tcp_address,))

    async def scenario() -> str:
        async with serving(service), joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.ValidationError) as failed:
                await session.call(f"{service.prepath}.echo", "abc", timeout=10)
            return str(failed.value)

    assert "'abc'" in run(scenario(), timeout=20)


@pytest.mark.parametrize(
    ("annotation", "value"),
    [
        (int, SECRET),
        (str, [SECRET]),
        (float, {"k": SECRET}),
        (Account, {"id": SECRET, "owner": SECRET}),
        (list[int], [1, SECRET]),
        (Account, {"id": 1, "owner": SECRET}),
    ],
)
def test_a_bad_result_is_described_by_type_only(annotation: Any, value: Any) -> None:
    with pytest.raises(almanet.ValidationError) as failed:
        TypeCheck(annotation).validate(value, "result", quote=False)
    _assert_clean(str(failed.value))
    with pytest.raises(almanet.ValidationError) as quoted:
        TypeCheck(annotation).validate(value, "payload")
    assert str(quoted.value).startswith("ValidationError: payload")
