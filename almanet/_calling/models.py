"""What the session hands back to users: call results and consumed messages."""

from __future__ import annotations

from typing import Any, Generic, NamedTuple, TypeVar

import orjson

from .._nsq.consumer import Message
from .._wire.checks import check_delay

__all__ = ["CallResult", "ConsumedMessage", "decode_body"]

T = TypeVar("T")


class CallResult(NamedTuple, Generic[T]):
    """A successful reply to a call (immutable)."""

    call_id: str
    payload: T


def decode_body(body: bytes) -> Any:
    """JSON when the body is JSON; otherwise the raw bytes, so nothing received is dropped."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body


class ConsumedMessage:
    """A message from ``consume``: commit (FIN) when handled, rollback (REQ) to get it again."""

    __slots__ = ("_message", "body")

    def __init__(self, message: Message) -> None:
        self._message = message
        self.body: Any = decode_body(message.body)

    @property
    def id(self) -> str:
        return self._message.id.decode("ascii", "replace")

    @property
    def timestamp(self) -> int:
        """When nsqd received the message, in nanoseconds since the epoch."""
        return self._message.timestamp

    @property
    def attempts(self) -> int:
        return self._message.attempts

    @property
    def raw(self) -> bytes:
        return self._message.body

    @property
    def handled(self) -> bool:
        return self._message.responded

    async def commit(self) -> None:
        self._message.finish()

    async def rollback(self, delay: float = 0.0) -> None:
        """Give the message back to nsqd, to be delivered again after ``delay`` seconds (0 to 3600).

        Checked here: nsqd answers an out-of-range REQ with a fatal error that drops the
        connection, and with it the commit or rollback of every other message in flight on it.
        """
        self._message.requeue(int(check_delay(delay) * 1000))

    async def touch(self) -> None:
        """Ask nsqd for more time before it considers the message lost and redelivers it."""
        self._message.touch()

    def __repr__(self) -> str:
        return f"ConsumedMessage(id={self.id!r}, attempts={self.attempts}, body={self.body!r})"
