"""A message nsqd sends after its CLOSE_WAIT is given back at once, not left to nsqd's msg-timeout.

nsqd's message pump can pick a message in the instant a CLS lands and write it after the
CLOSE_WAIT answer (its select has both ready). Nobody here handles such a message: the
subscription was drained on CLOSE_WAIT. Bytes in, bytes out, over a socketpair: the frames are
what nsqd writes, the REQ is what almanet writes back.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from almanet._nsq import codec
from almanet._nsq.connection import Connection
from almanet._nsq.consumer import Consumer
from almanet._nsq.options import ConnectionOptions

MESSAGE_ID = b"0123456789abcdef"


def _frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">ii", len(data) + 4, kind) + data


def _message(message_id: bytes, attempts: int = 1) -> bytes:
    return _frame(codec.FRAME_MESSAGE, struct.pack(">qH", 1_700_000_000_000_000_000, attempts) + message_id + b'"x"')


async def _scenario(before: bytes, after: bytes) -> tuple[list[bytes], bytes]:
    """A consumer's connection sends CLS; nsqd's side answers ``before`` + CLOSE_WAIT + ``after``."""
    handled: list[bytes] = []
    consumer = Consumer("t", "c", ["127.0.0.1:1"], lambda m: handled.append(m.id), max_in_flight=5)
    ours, nsqd = socket.socketpair()
    nsqd.setblocking(False)
    loop = asyncio.get_running_loop()
    connection = Connection("127.0.0.1:1", ConnectionOptions(), consumer)
    await loop.create_connection(lambda: connection, sock=ours)
    closing = asyncio.ensure_future(connection.start_close())
    assert await loop.sock_recv(nsqd, 64) == codec.cls()
    await loop.sock_sendall(nsqd, before + _frame(codec.FRAME_RESPONSE, codec.CLOSE_WAIT) + after)
    await closing
    written = b""
    if after:  # the REQ of the late message
        async with asyncio.timeout(5):
            while b"\n" not in written:
                written += await loop.sock_recv(nsqd, 64)
    assert consumer.in_flight == len(handled)  # the late one is settled, the handled ones are ours
    await connection.close()
    nsqd.close()
    return handled, written


def test_a_message_after_close_wait_is_requeued_in_the_same_read() -> None:
    handled, written = asyncio.run(_scenario(b"", _message(MESSAGE_ID, attempts=3)))
    assert handled == []
    assert written == codec.req(MESSAGE_ID, 0)


def test_a_message_before_close_wait_is_still_handed_over() -> None:
    handled, written = asyncio.run(_scenario(_message(MESSAGE_ID), b""))
    assert handled == [MESSAGE_ID]
    assert written == b""
