"""The diagnostics hook behind ``almanet call -v``: ``call``/``multicall`` fill a CallTrace when given one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import almanet
from almanet._calling.trace import CallTrace
from almanet._wire import protocol as _wire
from tests.integration._aio import joined, run, serving
from tests.support.nsqproc import NsqdProcess


def test_call_fills_the_trace(nsqd: NsqdProcess, unique_name: Callable[..., str]) -> None:
    service = almanet.new_service(nsqd.tcp_address, prepath=unique_name("tr"))

    @service.procedure
    async def echo(payload: int) -> int:
        return payload

    async def scenario() -> None:
        async with serving(service), joined(nsqd.tcp_address) as session:
            trace = CallTrace()
            result = await session.call(f"{service.prepath}.echo", 5, timeout=5, trace=trace)
            assert trace.call_id == result.call_id and trace.topic == _wire.rpc_topic(f"{service.prepath}.echo")
            assert trace.reply_topic == _wire.reply_topic(session.id)
            assert trace.sent is not None and trace.published is not None and trace.published >= trace.sent
            ((arrived, address),) = trace.replies
            assert address == nsqd.tcp_address and arrived >= trace.sent
            many = CallTrace()
            assert len(await session.multicall(f"{service.prepath}.echo", 1, timeout=0.5, trace=many)) == 1
            assert len(many.replies) == 1 and many.call_id != trace.call_id
            nobody = CallTrace()
            with pytest.raises(TimeoutError):
                await session.call(f"{service.prepath}.nobody", None, timeout=0.2, trace=nobody)
            assert nobody.published is not None and nobody.replies == []  # sent, never answered

    run(scenario())
