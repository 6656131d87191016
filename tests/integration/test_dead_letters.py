"""Dead letters: a message that used up its attempts is published to the dead-letter topic, then finished."""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Callable

import pytest

import almanet
from tests.integration._aio import joined, run, wait_for_async
from tests.support.nsqproc import NsqdProcess


def test_the_last_rollback_moves_the_message_to_the_dead_letter_topic(
    nsqd: NsqdProcess, unique_name: Callable[..., str]
) -> None:
    topic, channel, dead = unique_name("dl"), unique_name("ch"), unique_name("dead")

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            async with session.consume(dead, "inspect") as letters:  # subscribed first: it gets a copy
                async with session.consume(topic, channel, max_attempts=3, dead_letter_topic=dead) as messages:
                    await session.produce(topic, {"order": 7})
                    seen = []
                    async for message in messages:
                        seen.append(message.attempts)
                        await message.rollback(error=ValueError("no such customer"))
                        if message.attempts == 3:
                            break
                    assert seen == [1, 2, 3]
                async for letter in letters:
                    assert letter.body["topic"] == topic
                    assert letter.body["channel"] == channel
                    assert letter.body["attempts"] == 3
                    assert letter.body["error"] == "ValueError: no such customer"
                    assert letter.body["body"] == {"order": 7}
                    await letter.commit()
                    break
        # finished, not requeued: nothing left in the channel
        await wait_for_async(
            lambda: (
                (nsqd.channel_stats(topic, channel) or {}).get("depth", 0) == 0
                and (nsqd.channel_stats(topic, channel) or {}).get("in_flight_count", 0) == 0
            ),
            timeout=5,
            message="the dead-lettered message is still in its channel",
        )

    run(scenario())


def _http_pub(nsqd: NsqdProcess, topic: str, body: bytes) -> None:
    request = urllib.request.Request(f"http://{nsqd.http_address}/pub?topic={topic}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=2) as response:
        assert response.read().strip() == b"OK"


def test_a_message_delivered_past_max_attempts_is_moved_not_dropped(
    nsqd_factory: Callable[..., NsqdProcess], unique_name: Callable[..., str]
) -> None:
    """Delivered again without a commit (another consumer rolled it back, or timed out): moved on arrival."""
    # The second rollback's redelivery races the first subscription's CLS: nsqd may send it after
    # CLOSE_WAIT (requeued at once if the socket is still open) or once the socket is gone, when
    # only nsqd's msg-timeout brings it back: 2 s here, not a minute.
    nsqd = nsqd_factory(extra_args=["--msg-timeout=2s"])
    topic, channel, dead = unique_name("dl"), unique_name("ch"), unique_name("dead")

    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            async with session.consume(dead, "inspect") as letters:
                async with session.consume(topic, channel) as messages:  # no limit: rolls it back twice
                    _http_pub(nsqd, topic, b"\xff not json")  # not JSON: kept as base64 in the letter
                    async for message in messages:
                        await message.rollback()
                        if message.attempts == 2:
                            break
                async with session.consume(topic, channel, max_attempts=1, dead_letter_topic=dead):
                    async for letter in letters:  # the third delivery went straight to the dead letters
                        # 3, or more when the first subscription got it once more while closing (requeued)
                        assert letter.body["attempts"] >= 3
                        assert f"delivered {letter.body['attempts']} times (max_attempts=1)" in letter.body["error"]
                        assert base64.b64decode(letter.body["body_base64"]) == b"\xff not json"  # kept byte for byte
                        break

    run(scenario())


def test_dead_letter_topic_needs_max_attempts(nsqd: NsqdProcess) -> None:
    async def scenario() -> None:
        async with joined(nsqd.tcp_address) as session:
            with pytest.raises(almanet.invalid_argument, match="needs max_attempts"):
                session.consume("a", "b", dead_letter_topic="dead")
            with pytest.raises(almanet.invalid_argument, match="must differ"):
                session.consume("a", "b", max_attempts=2, dead_letter_topic="a")
            with pytest.raises(almanet.invalid_argument, match="topic name"):
                session.consume("a", "b", max_attempts=2, dead_letter_topic="bad name!")

    run(scenario())
