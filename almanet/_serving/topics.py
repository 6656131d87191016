"""The topics a service declares it produces or consumes: documentation that discovery carries.

almanet's produce/consume is the session's (``session.produce``, ``session.consume``), so a
service's topics are not registered anywhere for their code to run; declaring them puts the
topic, its direction and its message's JSON Schema into the discovery reply, where
``almanet asyncapi`` makes them channels and ``--check`` compares them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .._nsq.names import check_name, is_ephemeral
from .._wire.errors import invalid_argument, session_state_error
from .._wire.validation import TypeCheck

__all__ = ["DeclaredTopic", "TopicDeclarations"]

Direction = Literal["produces", "consumes"]


@dataclass(frozen=True, slots=True)
class DeclaredTopic:
    topic: str
    direction: Direction
    message: TypeCheck
    description: str
    channel: str | None

    def describe(self) -> dict[str, Any]:
        """Its entry in the discovery reply's ``topics`` (an almanet extension; 0.7.0 ignores it)."""
        entry: dict[str, Any] = {
            "topic": self.topic,
            "direction": self.direction,
            "description": self.description,
            "message_json_schema": self.message.schema(),
            "ephemeral": is_ephemeral(self.topic),
        }
        if self.channel is not None:
            entry["channel"] = self.channel
        return entry


class TopicDeclarations:
    """``Service``'s ``produces()`` and ``consumes()``: what it publishes and reads, for contracts."""

    topics: dict[tuple[str, Direction], DeclaredTopic]

    def _declare(self, topic: str, message: Any, direction: Direction, description: str, channel: str | None) -> None:
        if getattr(self, "_running", None) is not None:
            raise session_state_error("declare topics before the service starts")
        try:
            check_name(topic, "topic")
            if channel is not None:
                check_name(channel, "channel")
        except ValueError as exc:
            raise invalid_argument(f"cannot declare topic {topic!r}: {exc}") from None
        if (topic, direction) in self.topics:
            raise invalid_argument(f"topic {topic!r} is declared twice as {direction}")
        try:
            check = TypeCheck(message)
            check.schema()
        except Exception as exc:  # pydantic's schema error says nothing of the topic
            raise TypeError(f"topic {topic!r}: its message type {message!r} has no JSON Schema ({exc})") from None
        self.topics[(topic, direction)] = DeclaredTopic(topic, direction, check, description, channel)

    def produces(self, topic: str, message: Any = Any, *, description: str = "") -> None:
        """Declare that this service publishes ``message`` (a type: JSON types, a model) to ``topic``."""
        self._declare(topic, message, "produces", description, None)

    def consumes(self, topic: str, message: Any = Any, *, channel: str | None = None, description: str = "") -> None:
        """Declare that this service reads ``topic`` (on ``channel``), expecting ``message``."""
        self._declare(topic, message, "consumes", description, channel)
