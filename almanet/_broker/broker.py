"""``Broker``: a session's connections to nsqd — one producer, its consumers, the lookupd poller.

It is the one place where errors of the NSQ client (``almanet._nsq``) become almanet errors, and
where a fix is worded in terms of almanet's settings (``almanet.toml`` keys, ``ALMANET_*``
variables): the client below knows only nsqd's flags and which of its own options failed.
Given nsqlookupd addresses, it follows the nsqd registered there: they are looked up at
``start()`` and every ``lookupd_interval`` seconds after, and each new nsqd is added to the
producer and to every consumer it owns (or makes later).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from .._nsq.consumer import Consumer, Message
from .._nsq.discovery import LookupdPoller, NSQLookupdError
from .._nsq.errors import NSQConnectionError, NSQError, NSQErrorResponse, NSQHandshakeError, NSQSettingError
from .._nsq.options import DEFAULT_USER_AGENT, ConnectionOptions
from .._nsq.producer import Producer
from .._wire.errors import broker_error, invalid_argument, session_state_error

__all__ = ["Broker", "setting_hint", "translate_nsq_error"]

logger = logging.getLogger(__name__)

USER_AGENT = "almanet-nsq/0.8"  # in IDENTIFY (docs/protocol.md), unless the options name another

# The client's option names (NSQSettingError's placeholders) as almanet's settings spell them.
_SETTING_NAMES = {
    "tls": "tls.enabled",
    "ca_file": "tls.ca_file",
    "cert_file": "tls.cert_file",
    "key_file": "tls.key_file",
    "verify": "tls.verify",
    "auth_secret": "auth.secret",
    "address": "nsq.nsqd (or --nsqd, ALMANET_NSQD)",
}


def setting_hint(exc: NSQSettingError) -> str:
    """The client's message with the fix worded in almanet's settings (``almanet.toml`` keys)."""
    return exc.render(_SETTING_NAMES, " in almanet.toml")


def translate_nsq_error(exc: NSQError, doing: str) -> broker_error:
    """The one place NSQ client errors become almanet errors, with a hint at the fix."""
    if isinstance(exc, NSQSettingError):
        return broker_error(f"{doing}: {setting_hint(exc)}")
    if isinstance(exc, NSQHandshakeError):  # nsqd is there: its message already names the fix
        return broker_error(f"{doing}: {exc}")
    if isinstance(exc, NSQConnectionError):
        return broker_error(f"{doing}: {exc}. Is nsqd running there? Set the address with ALMANET_NSQD or almanet.toml")
    if isinstance(exc, NSQErrorResponse) and exc.code in {"E_BAD_MESSAGE", "E_BAD_BODY"}:
        return broker_error(f"{doing}: nsqd refused the message ({exc}); is it larger than nsqd's --max-msg-size?")
    return broker_error(f"{doing}: nsqd answered {exc}")


def _produce_failed(exc: Exception, topic: str) -> Exception:
    return translate_nsq_error(exc, f"cannot produce to {topic!r}") if isinstance(exc, NSQError) else exc


def _low_latency(options: ConnectionOptions) -> ConnectionOptions:
    """nsqd writes each message at once instead of buffering up to 250 ms: RPC wants latency."""
    return dataclasses.replace(options, output_buffer_size=-1)


class Broker:
    """The nsqd a session uses, and every connection it holds to them.

    ``addresses`` grows as lookupd lists new nsqd; an nsqd that lookupd stops listing is kept
    (its connections reconnect). ``closing()`` refuses new subscriptions at once; ``close()``
    stops the poller, every consumer, then the producer.
    """

    def __init__(
        self,
        addresses: Sequence[str],
        options: ConnectionOptions,
        *,
        max_message_size: int,
        lookupd: Sequence[str] = (),
        lookupd_interval: float,
    ) -> None:
        self.addresses: tuple[str, ...] = tuple(addresses)
        if options.user_agent == DEFAULT_USER_AGENT:
            options = dataclasses.replace(options, user_agent=USER_AGENT)
        self.options = options
        self.max_message_size = max_message_size
        self.lookupd = tuple(lookupd)
        self.lookupd_interval = lookupd_interval
        self._producer: Producer | None = None
        self._consumers: set[Consumer] = set()
        self._poller: LookupdPoller | None = None
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Find nsqd through lookupd (when given), open the producer, then start polling lookupd."""
        poller = None
        if self.lookupd:
            poller = LookupdPoller(
                self.lookupd, self._on_nsqd_found, interval=self.lookupd_interval, timeout=self.options.connect_timeout
            )
            await self._lookup_nsqd(poller)
        producer = Producer(self.addresses, self.options)
        try:
            await producer.connect()
        except NSQError as exc:
            await producer.close()
            raise translate_nsq_error(exc, "cannot join") from None
        except BaseException:  # cancelled: close what was opened
            await asyncio.shield(producer.close())
            raise
        self._producer = producer
        if poller is not None:
            self._poller = poller
            poller.start()

    async def _lookup_nsqd(self, poller: LookupdPoller) -> None:
        """The first lookup: the nsqd lookupd lists, added to those given. Joining needs at least one."""
        where = ", ".join(self.lookupd)
        try:
            found = await poller.poll()
        except NSQLookupdError as exc:
            if not self.addresses:
                raise broker_error(
                    f"cannot join: {exc}. Is nsqlookupd running at {where}?"
                    " Set its HTTP address with ALMANET_LOOKUPD or nsq.lookupd_http in almanet.toml"
                ) from None
            return  # the failure is logged; the nsqd given are enough to start, lookupd is asked again later
        self.addresses = tuple(dict.fromkeys((*self.addresses, *found)))
        if not self.addresses:
            raise broker_error(
                f"cannot join: no nsqd is registered with nsqlookupd at {where}"
                " (start nsqd with --lookupd-tcp-address=<lookupd host>:4160, or give an nsqd address)"
            )

    def _on_nsqd_found(self, found: list[str]) -> None:
        """lookupd lists nsqd we do not use yet: publish there, and subscribe there everything we read."""
        if self._closing or self._producer is None:
            return
        new = [a for a in found if a not in self.addresses]
        if not new:
            return
        self.addresses = (*self.addresses, *new)
        for address in new:
            logger.info("using nsqd %s, found through nsqlookupd", address)
            self._producer.add_address(address)
            for consumer in list(self._consumers):
                consumer.add_address(address)

    def closing(self) -> None:
        """From now on, ``subscribe`` refuses: a consumer started now would outlive ``close()``."""
        self._closing = True

    async def close(
        self,
        *,
        before_consumers: Callable[[], Awaitable[None]] | None = None,
        before_producer: Callable[[], None] | None = None,
    ) -> None:
        """Stop the poller, ``before_consumers()``, every consumer, ``before_producer()``, the producer."""
        self._closing = True
        if self._poller is not None:
            await self._poller.close()
        if before_consumers is not None:
            await before_consumers()
        consumers, self._consumers = set(self._consumers), set()
        await asyncio.gather(*(c.stop() for c in consumers), return_exceptions=True)
        if before_producer is not None:
            before_producer()
        if self._producer is not None:
            await self._producer.close()

    # -- consuming -------------------------------------------------------------------------------

    async def subscribe(
        self,
        topic: str,
        channel: str,
        handler: Callable[[Message], None],
        *,
        max_in_flight: int,
        low_latency: bool,
        advertise: str = "",
    ) -> Consumer:
        """Start a consumer on every nsqd; it is stopped by ``unsubscribe`` or ``close``.

        ``advertise`` is appended to the IDENTIFY user_agent: other sessions read it in nsqd's
        /stats to learn what this subscriber understands (the deadline extension).
        """
        if self._closing:
            raise session_state_error("the session is not open: it was closed; create a new session")
        options = _low_latency(self.options) if low_latency else self.options
        if advertise:
            options = dataclasses.replace(options, user_agent=f"{options.user_agent} {advertise}")
        consumer = Consumer(topic, channel, self.addresses, handler, max_in_flight=max_in_flight, options=options)
        try:
            await consumer.start()
        except NSQError as exc:
            raise translate_nsq_error(exc, f"cannot subscribe to {topic}/{channel}") from None
        if self._closing:  # the session left while we subscribed: nobody would stop it
            await consumer.stop()
            raise session_state_error("the session is not open: it was closed; create a new session")
        self._consumers.add(consumer)
        for address in self.addresses:  # nsqd found through lookupd while it subscribed
            consumer.add_address(address)
        return consumer

    async def unsubscribe(self, consumer: Consumer, drain_timeout: float = 0.0) -> None:
        self._consumers.discard(consumer)
        await consumer.stop(drain_timeout)

    # -- publishing ------------------------------------------------------------------------------

    def check_size(self, body: bytes | bytearray, what: str) -> None:
        if len(body) > self.max_message_size:
            raise invalid_argument(
                f"{what} is {len(body)} bytes; nsqd accepts at most {self.max_message_size}"
                " (raise nsqd's --max-msg-size and the session's max_message_size together)"
            )

    def publish_nowait(self, topic: str, body: bytes, prefer: str | None = None) -> asyncio.Future[None]:
        """Queue ``body`` for this tick's MPUB to ``topic``; the future fails with the client's error.

        The failure is not translated here: the caller knows what it was doing (``translate_nsq_error``).
        """
        return self._producer.publish_nowait(topic, body, prefer=prefer)  # type: ignore[union-attr]

    def publisher(self) -> Callable[..., asyncio.Future[None]]:
        """``publish_nowait`` without this layer's frame, for a per-call path; after ``start()``."""
        assert self._producer is not None, "the broker is not started"
        return self._producer.publish_nowait

    def publish_each(self, topic: str, body: bytes) -> asyncio.Future[None]:
        """This message's own future, failing with a ``broker_error``; no task per message."""
        return self._producer.publish_each(topic, body, _produce_failed)  # type: ignore[union-attr]

    # ``doing`` (what failed, for the message) defaults to "cannot produce to <topic>": made only
    # on failure, since an f-string per message is measurable at 100k messages a second.

    async def publish_deferred(self, topic: str, delay: float, body: bytes, *, doing: str | None = None) -> None:
        """DPUB: nsqd delivers ``body`` after ``delay`` seconds (checked by the caller)."""
        try:
            await self._producer.publish_deferred(topic, int(delay * 1000), body)  # type: ignore[union-attr]
        except NSQError as exc:
            raise translate_nsq_error(exc, doing or f"cannot produce to {topic!r}") from None

    async def publish_many(
        self, topic: str, bodies: Iterable[bytes], *, progress: Any = None, doing: str | None = None
    ) -> None:
        """MPUB batches (``codec.MessageBatch``), a few in flight; ``progress`` gets each batch's count."""
        try:
            await self._producer.publish_many(topic, bodies, progress=progress)  # type: ignore[union-attr]
        except NSQError as exc:
            raise translate_nsq_error(exc, doing or f"cannot produce to {topic!r}") from None
