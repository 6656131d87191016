"""What nsqd's HTTP API says about RPC topics: subscribers, backlog, in flight, who listens.

A session knows its nsqd by TCP address, while ``/stats`` is on HTTP. The HTTP address of each
nsqd is learnt once and kept: from nsqlookupd's ``/nodes`` (it lists both ports), from the
``nsqd_http`` addresses the session was given (their ``/info`` names the TCP port they serve), or
guessed as the TCP port + 1 and kept only if that ``/info`` names the same TCP port. An nsqd no
HTTP address could be matched to is *unread*: nothing is concluded about what it holds.

Reads are shared: callers asking at the same time (many calls timing out together) await one
round of requests, so the broker sees one ``/stats`` per nsqd, not one per call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from .._nsq.address import Address
from .._nsq.http import NSQHTTPError, request_json
from .._wire import protocol as _wire

__all__ = ["DEFAULT_STATS_TIMEOUT", "Snapshot", "StatsReader", "TopicFacts", "parse_stats"]

DEFAULT_STATS_TIMEOUT = 1.0
GUESS_RETRY = 30.0  # seconds before a wrong or unanswered TCP-port+1 guess is tried again
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}


@dataclasses.dataclass(slots=True)
class TopicFacts:
    """One topic summed over every nsqd read."""

    topic: str
    subscribers: int = 0  # clients on any channel of the topic
    capable: bool = True  # every one of them announced the deadline extension
    traceable: bool = True  # every one of them reads a trace context (TRACE_AGENT)
    depth: int = 0  # waiting: in the topic (no channel yet) and in its channels
    in_flight: int = 0  # delivered, not finished
    requeued: int = 0  # channel requeue + timeout counts: deliveries that were tried again
    channels: dict[str, int] = dataclasses.field(default_factory=dict)  # channel -> clients
    nsqd: list[str] = dataclasses.field(default_factory=list)  # TCP addresses holding the topic

    @property
    def served(self) -> bool:
        return self.subscribers > 0


@dataclasses.dataclass(slots=True)
class Snapshot:
    """The RPC topics as the nsqd read just now saw them."""

    topics: dict[str, TopicFacts]
    read: list[str]  # nsqd (TCP addresses) whose /stats was read
    unread: list[str]  # what could not be read, one sentence each
    taken_at: float

    @property
    def complete(self) -> bool:
        """Every nsqd the session knows was read: an absent subscriber is really absent."""
        return bool(self.read) and not self.unread

    def facts(self, topic: str) -> TopicFacts:
        return self.topics.get(topic) or TopicFacts(topic)


def _key(host: str, port: int) -> tuple[str, int]:
    host = host.strip("[]").lower()
    return ("loopback" if host in _LOOPBACK else host), port


def _client_traceable(client: Any) -> bool:
    agent = client.get("user_agent") if isinstance(client, dict) else None
    return isinstance(agent, str) and _wire.TRACE_AGENT in agent.split()


def _client_capable(client: Any) -> bool:
    agent = client.get("user_agent") if isinstance(client, dict) else None
    return isinstance(agent, str) and _wire.DEADLINE_AGENT in agent.split()


def parse_stats(document: Any, tcp_address: str, into: dict[str, TopicFacts], only: str | None = None) -> None:
    """Add one nsqd's ``/stats`` document to ``into`` (RPC topics only, or only topic ``only``)."""
    for entry in (document or {}).get("topics") or []:
        name = entry.get("topic_name") or ""
        if not name.startswith(_wire.RPC_PREFIX) or (only is not None and name != only):
            continue
        facts = into.get(name)
        if facts is None:
            facts = into[name] = TopicFacts(name)
        facts.nsqd.append(tcp_address)
        channels = entry.get("channels") or []
        if not channels:  # no channel: invocations wait in the topic itself
            facts.depth += int(entry.get("depth") or 0)
        for channel in channels:
            clients = channel.get("clients")
            count = int(channel.get("client_count") or (len(clients) if clients else 0))
            facts.subscribers += count
            name_ = channel.get("channel_name") or ""
            facts.channels[name_] = facts.channels.get(name_, 0) + count
            listed = isinstance(clients, list) and len(clients) >= count
            if count and not (listed and all(map(_client_capable, clients))):
                facts.capable = False
            if count and not (listed and all(map(_client_traceable, clients))):
                facts.traceable = False
            facts.depth += int(channel.get("depth") or 0)
            facts.in_flight += int(channel.get("in_flight_count") or 0)
            facts.requeued += int(channel.get("requeue_count") or 0) + int(channel.get("timeout_count") or 0)


class StatsReader:
    """Reads ``/stats`` of every nsqd ``addresses()`` names (the session's list, which grows)."""

    def __init__(
        self,
        addresses: Callable[[], Sequence[str]],
        nsqd_http: Sequence[str] = (),
        lookupd: Sequence[str] = (),
        timeout: float = DEFAULT_STATS_TIMEOUT,
    ) -> None:
        self._addresses = addresses
        self._given = list(dict.fromkeys(nsqd_http))
        self._lookupd = tuple(lookupd)
        self.timeout = timeout
        self._http: dict[tuple[str, int], str] = {}  # nsqd TCP key -> its HTTP address
        self._probed: dict[str, float] = {}  # HTTP address -> when its /info was asked (answered or not)
        self._reads: dict[tuple[str | None, bool], asyncio.Future[Snapshot]] = {}

    async def snapshot(self, topic: str | None = None, *, clients: bool = True) -> Snapshot:
        """One topic (or every RPC topic), shared with any read of the same already under way.

        ``clients=False`` leaves out each subscriber's details (its user_agent): a much smaller
        document, enough to count subscribers but not to tell whether they know deadlines.
        """
        key = (topic, clients)
        running = self._reads.get(key)
        if running is None:
            running = self._reads[key] = asyncio.ensure_future(self._read(topic, clients))
            running.add_done_callback(lambda _: self._reads.pop(key, None))
        return await asyncio.shield(running)

    async def max_message_size(self) -> int | None:
        """The smallest ``--max-msg-size`` of the nsqd whose HTTP API is known (None: none read).

        IDENTIFY does not tell it; ``/config/max_msg_size`` does. An nsqd that cannot be read is
        left out: what nsqd refuses stays the session's own ``max_message_size``'s to guard.
        """
        found, _ = await self._resolve()
        values = await asyncio.gather(
            *(self._get(h, "/config/max_msg_size") for h in found.values()), return_exceptions=True
        )
        sizes = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0]
        return min(sizes) if sizes else None

    async def delete_topic(self, tcp_address: str, topic: str) -> None:
        """Delete ``topic`` on the nsqd at ``tcp_address`` (learnt by an earlier read); raises NSQHTTPError."""
        http = self._http.get(_key(*Address.parse(tcp_address)))
        if http is None:
            raise NSQHTTPError(f"nsqd {tcp_address}: its HTTP address is unknown", address=tcp_address)
        path = "/topic/delete?" + urllib.parse.urlencode({"topic": topic})
        await request_json(http, path, method="POST", timeout=self.timeout)

    async def _get(self, address: str, path: str) -> Any:
        return await request_json(address, path, timeout=self.timeout)

    async def _info(self, http: str, expect: tuple[str, int] | None = None) -> None:
        """Learn which nsqd ``http`` is; a guess (``expect``) is kept only if /info agrees."""
        try:
            info = await self._get(http, "/info")
        except NSQHTTPError:
            if expect is not None:
                self._probed[http] = time.monotonic()  # not again before GUESS_RETRY
            return
        self._probed[http] = time.monotonic() if expect is not None else math.inf
        port = info.get("tcp_port") if isinstance(info, dict) else None
        if not isinstance(port, int):
            return
        host = Address.parse(http)[0]
        key = _key(host, port)
        if expect is None or key == expect:
            self._http.setdefault(key, http)

    async def _from_lookupd(self) -> None:
        async def nodes(lookupd: str) -> None:
            try:
                document = await self._get(lookupd, "/nodes")
            except NSQHTTPError:
                return
            for producer in (document or {}).get("producers") or []:
                tcp, http = Address.of_node(producer, "tcp"), Address.of_node(producer, "http")
                if tcp is not None and http is not None:
                    self._http.setdefault(_key(*tcp), str(http))

        await asyncio.gather(*(nodes(a) for a in self._lookupd))

    async def _resolve(self) -> tuple[dict[str, str], list[str]]:
        """TCP address -> HTTP address for each nsqd of the session, and the ones with none."""
        fresh = [h for h in self._given if self._probed.get(h) != math.inf]
        if fresh:
            await asyncio.gather(*(self._info(h) for h in fresh))
        tcp = list(dict.fromkeys(self._addresses()))
        keys = {}
        for address in tcp:
            host, port = Address.parse(address)
            keys[address] = _key(host, port)
        missing = [a for a in tcp if keys[a] not in self._http]
        if missing and self._lookupd:
            await self._from_lookupd()
            missing = [a for a in missing if keys[a] not in self._http]
        guesses = []
        for address in missing:
            host, port = Address.parse(address)
            guess = str(Address(host, port + 1))
            if time.monotonic() - self._probed.get(guess, -math.inf) > GUESS_RETRY and port < 65535:
                guesses.append(self._info(guess, expect=keys[address]))
        if guesses:
            await asyncio.gather(*guesses)
        found = {a: self._http[keys[a]] for a in tcp if keys[a] in self._http}
        unread = [
            f"nsqd {a}: its HTTP address is unknown (give it with nsqd_http= or nsq.nsqd_http)"
            for a in tcp
            if a not in found
        ]
        return found, unread

    async def _read(self, topic: str | None, clients: bool) -> Snapshot:
        found, unread = await self._resolve()
        query: dict[str, str] = {"format": "json", "include_mem": "false"}
        if not clients:
            query["include_clients"] = "false"
        if topic is not None:
            query["topic"] = topic
        path = "/stats?" + urllib.parse.urlencode(query)
        results = await asyncio.gather(*(self._get(h, path) for h in found.values()), return_exceptions=True)
        topics: dict[str, TopicFacts] = {}
        read = []
        for (tcp, _), result in zip(found.items(), results, strict=True):
            if isinstance(result, NSQHTTPError):
                unread.append(f"nsqd {tcp}: {result}")
            elif isinstance(result, BaseException):
                raise result
            else:
                read.append(tcp)
                parse_stats(result, tcp, topics, topic)
        return Snapshot(topics, read, unread, time.monotonic())
