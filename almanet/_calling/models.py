"""What the session hands back to users: call results and consumed messages."""

from __future__ import annotations

from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import orjson

from .._nsq.consumer import Message
from .._wire.checks import check_delay
from .deadletter import error_text

__all__ = ["CallResult", "ConsumedMessage", "DeadLetters", "decode_body"]

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


class DeadLetters(Protocol):
    """What a message needs of its subscription to become a dead letter (``Subscription`` is one)."""

    def exhausted(self, message: Message) -> bool: ...

    async def bury(self, message: Message, error: str) -> None: ...


class ConsumedMessage:
    """A message from ``consume``: commit (FIN) when handled, rollback (REQ) to get it again."""

    __slots__ = ("_message", "_owner", "body")

    def __init__(self, message: Message, owner: DeadLetters | None = None) -> None:
        self._message = message
        self._owner = owner  # the subscription, when it has a dead-letter topic
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

    async def rollback(self, delay: float = 0.0, *, error: BaseException | str | None = None) -> None:
        """Give the message back to nsqd, to be delivered again after ``delay`` seconds (0 to 3600).

        Checked here: nsqd answers an out-of-range REQ with a fatal error that drops the
        connection, and with it the commit or rollback of every other message in flight on it.
        With a dead-letter topic, the rollback of the last attempt publishes the message there
        (``error`` is recorded in it) and then finishes it; if that publish fails, the error is
        raised and the message is given back to nsqd instead.
        """
        requeue_ms = int(check_delay(delay) * 1000)
        owner = self._owner
        if owner is not None and owner.exhausted(self._message):
            try:
                await owner.bury(self._message, error_text(error))
            except BaseException:
                self._message.requeue(requeue_ms)
                raise
            return
        self._message.requeue(requeue_ms)

    async def touch(self) -> None:
        """Ask nsqd for more time before it considers the message lost and redelivers it."""
        self._message.touch()

    def decode(self, model: type[T]) -> T:
        """The message validated into ``model`` (a pydantic model, dataclass, TypedDict, ...).

        Raises almanet's ``ValidationError`` saying which fields are wrong; the message stays
        unhandled, so roll it back or commit it as the consumer decides.
        """
        from .._wire.validation import validated_json

        return validated_json(model, self._message.body, "the message")  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"ConsumedMessage(id={self.id!r}, attempts={self.attempts}, body={self.body!r})"
