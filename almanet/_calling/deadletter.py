"""Dead letters: a consumed message that used up its attempts goes to another topic, not away.

The envelope keeps what an operator needs to replay or inspect it: where it came from, how many
times it was delivered, the last error, and the body (JSON as it was, anything else base64).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from .._nsq.consumer import Message

__all__ = ["envelope", "error_text"]


def error_text(error: BaseException | str | None) -> str:
    """How the last error reads in the envelope: ``Type: message`` for an exception."""
    if error is None:
        return "rolled back"
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return str(error)


def envelope(topic: str, channel: str, message: Message, error: str) -> dict[str, Any]:
    """The dead-letter message for ``message`` (documented in docs/protocol.md)."""
    letter: dict[str, Any] = {
        "topic": topic,
        "channel": channel,
        "message_id": message.id.decode("ascii", "replace"),
        "timestamp": message.timestamp,
        "attempts": message.attempts,
        "error": error,
    }
    try:
        letter["body"] = orjson.loads(message.body)
    except orjson.JSONDecodeError:
        letter["body_base64"] = base64.b64encode(message.body).decode("ascii")
    return letter
