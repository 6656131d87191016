"""The deadline rules, the deadline key on the wire, and reading /stats: pure, no daemons."""

from __future__ import annotations

import json
import math

import pytest

from almanet._broker.stats import TopicFacts, parse_stats
from almanet._wire import deadline as _deadline
from almanet._wire import protocol as _wire
from almanet.cli.services import build_report

SENT_NS = 1_700_000_000 * 10**9


def test_the_callers_deadline_wins_over_stale_after() -> None:
    assert _deadline.expiry(SENT_NS, 1500, 60.0) == (1_700_000_001.5, "deadline")
    assert _deadline.expiry(SENT_NS, None, 60.0) == (1_700_000_060.0, "stale_after")
    assert _deadline.expiry(SENT_NS, None, None) == (None, "")
    assert _deadline.expiry(SENT_NS, 0, None) == (1_700_000_000.0, "deadline")


def test_the_earlier_of_the_id_deadline_and_the_key_wins() -> None:
    # nsqd stamped the message late (a frozen nsqd took it when it thawed): the id's deadline holds
    assert _deadline.expiry(SENT_NS, 1500, 60.0, 1_699_999_999.0) == (1_699_999_999.0, "deadline")
    # a caller's clock ahead of nsqd's: the key, counted from nsqd's stamp, holds
    assert _deadline.expiry(SENT_NS, 1500, 60.0, 1_700_000_009.0) == (1_700_000_001.5, "deadline")
    # a plain invocation (no key) from an almanet caller: the id's alone, stale_after ignored
    assert _deadline.expiry(SENT_NS, None, 60.0, 1_700_000_002.0) == (1_700_000_002.0, "deadline")
    budget, why = _deadline.judge(SENT_NS, None, 60.0, 1_700_000_002.5, 1_700_000_002.0)
    assert budget == 1_700_000_002.0 and why == "it waited 2.5s in nsqd, past its caller's deadline (500 ms ago)"
    assert _deadline.judge(SENT_NS, None, 60.0, 1_700_000_001.0, 1_700_000_002.0) == (1_700_000_002.0, "")


@pytest.mark.parametrize(("value", "stored"), [(None, None), (0, None), (60, 60.0), (0.5, 0.5)])
def test_stale_after_values(value: float | None, stored: float | None) -> None:
    assert _deadline.check_stale_after(value) == stored


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, "60", True])
def test_stale_after_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="stale_after must be"):
        _deadline.check_stale_after(value)  # type: ignore[arg-type]


def test_a_budget_caps_a_longer_timeout_only() -> None:
    assert _deadline.cap_timeout(30.0, 100.0) == (30.0, False)  # no budget in this context
    token = _deadline.budget.set(105.0)
    try:
        # 5 s left: less the margin for the outer reply, a tenth capped at 0.25 s
        assert _deadline.cap_timeout(30.0, 100.0) == (4.75, True)
        assert _deadline.cap_timeout(2.0, 100.0) == (2.0, False)
        assert _deadline.cap_timeout(2.0, 104.0) == (0.9, True)  # 1 s left: a tenth of it
        assert _deadline.cap_timeout(2.0, 106.0) == (-1.0, True)  # past: nothing to leave
    finally:
        _deadline.budget.reset(token)


def test_the_deadline_is_a_fifth_key_only_when_asked() -> None:
    plain = json.loads(_wire.encode_invocation("a" * 32, "b" * 32, 1, "r"))
    assert sorted(plain) == ["caller_id", "id", "payload", "reply_topic"]
    extended = json.loads(_wire.encode_invocation("a" * 32, "b" * 32, 1, "r", 1000))
    assert extended["timeout_ms"] == 1000 and len(extended) == 5
    assert _wire.decode_invocation(json.dumps(extended).encode()).timeout_ms == 1000
    assert _wire.decode_invocation(json.dumps(plain).encode()).timeout_ms is None


@pytest.mark.parametrize("bad", [-1, 1.5, "1000", True, None])
def test_a_bad_deadline_is_a_wire_error(bad: object) -> None:
    body = {"id": "a" * 32, "caller_id": "b" * 32, "payload": 1, "reply_topic": "r", "timeout_ms": bad}
    with pytest.raises(_wire.WireError, match="timeout_ms must be a non-negative integer"):
        _wire.decode_invocation(json.dumps(body).encode())


def _client(agent: str) -> dict[str, object]:
    return {"user_agent": agent, "in_flight_count": 0}


def _stats(*channels: dict[str, object], depth: int = 0) -> dict[str, object]:
    return {"topics": [{"topic_name": "_rpc_.net.x", "depth": depth, "channels": list(channels)}]}


def _channel(name: str, *agents: str, depth: int = 0, in_flight: int = 0) -> dict[str, object]:
    return {
        "channel_name": name,
        "client_count": len(agents),
        "clients": [_client(a) for a in agents],
        "depth": depth,
        "in_flight_count": in_flight,
        "requeue_count": 0,
        "timeout_count": 1,
    }


def test_stats_capable_only_when_every_subscriber_announces_the_deadline() -> None:
    ours = f"almanet-nsq/0.8 {_wire.DEADLINE_AGENT}"
    into: dict[str, TopicFacts] = {}
    parse_stats(_stats(_channel("RPC#ephemeral", ours, ours, depth=2, in_flight=1)), "a:4150", into)
    facts = into["_rpc_.net.x"]
    assert (facts.subscribers, facts.capable, facts.depth, facts.in_flight, facts.requeued) == (2, True, 2, 1, 1)
    # the same topic on a second nsqd, with a 0.7.0 instance on plain RPC: not capable any more
    parse_stats(_stats(_channel("RPC", "ansq/0.3.0")), "b:4150", into)
    assert facts.subscribers == 3 and facts.capable is False and facts.nsqd == ["a:4150", "b:4150"]
    assert facts.channels == {"RPC#ephemeral": 2, "RPC": 1}


def test_stats_a_topic_without_channel_is_unserved_with_its_depth() -> None:
    into: dict[str, TopicFacts] = {}
    parse_stats(_stats(depth=3), "a:4150", into)
    assert not into["_rpc_.net.x"].served and into["_rpc_.net.x"].depth == 3


def test_services_counts_a_070_subscriber_on_plain_rpc() -> None:
    instance = {"client": "c" * 32, "version": 0, "routes": ["net.x/RPC"]}
    node = _stats(_channel("RPC", "ansq/0.3.0"))
    report = build_report([_wire.decode_discovery(instance)], {"a:4151": node}, [])
    (entry,) = report["procedures"]
    assert entry["subscribers"] == 1 and entry["problems"] == [] and entry["stale"] == 0


def test_services_sums_stale_drops_over_instances() -> None:
    replies = [
        {"client": c * 32, "procedures": [{"uri": "net.x", "channel": "RPC"}], "stale": {"net.x": n}}
        for c, n in (("a", 2), ("b", 3))
    ]
    node = _stats(_channel("RPC#ephemeral", "x", "y"))
    (entry,) = build_report([_wire.decode_discovery(r) for r in replies], {"a:4151": node}, [])["procedures"]
    assert entry["stale"] == 5 and entry["problems"] == ["5 stale invocations dropped unrun"]
