"""almanet._nsq.backoff: reconnect delays, exponential with full jitter and a cap."""

from __future__ import annotations

import random

import pytest

from almanet._nsq.backoff import ReconnectPolicy


def _max(policy: ReconnectPolicy, attempt: int) -> float:
    """The delay with the largest jitter draw (rand() is in [0, 1), so 1.0 gives the ceiling)."""
    return policy.delay(attempt, rand=lambda: 1.0)


def test_defaults() -> None:
    policy = ReconnectPolicy()
    assert (policy.base, policy.cap) == (0.1, 10.0)


def test_exponential_growth_of_the_ceiling() -> None:
    policy = ReconnectPolicy(base=0.5, cap=1000.0)
    assert [_max(policy, n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_cap() -> None:
    policy = ReconnectPolicy(base=0.1, cap=10.0)
    assert _max(policy, 7) == pytest.approx(6.4)
    assert _max(policy, 8) == 10.0
    assert _max(policy, 9) == 10.0
    assert _max(policy, 1000) == 10.0
    assert _max(policy, 10**9) == 10.0  # no OverflowError for absurd attempt numbers


def test_first_attempts_and_below_start_at_base() -> None:
    policy = ReconnectPolicy(base=0.25, cap=5.0)
    assert _max(policy, 1) == 0.25
    assert _max(policy, 0) == 0.25
    assert _max(policy, -3) == 0.25


def test_full_jitter_scales_the_ceiling_by_the_draw() -> None:
    policy = ReconnectPolicy(base=1.0, cap=100.0)
    assert policy.delay(4, rand=lambda: 0.0) == 0.0
    assert policy.delay(4, rand=lambda: 0.5) == 4.0
    assert policy.delay(4, rand=lambda: 0.25) == 2.0


def test_random_draws_stay_within_zero_and_the_ceiling() -> None:
    rng = random.Random(1234)
    policy = ReconnectPolicy(base=0.1, cap=3.0)
    for attempt in range(1, 12):
        ceiling = min(3.0, 0.1 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, rand=rng.random) for _ in range(500)]
        assert all(0.0 <= d < ceiling for d in delays)
        # full jitter spreads over the whole range, not just near the top
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9


def test_default_random_source_is_used_when_none_is_given() -> None:
    policy = ReconnectPolicy(base=1.0, cap=1.0)
    delays = {policy.delay(1) for _ in range(50)}
    assert all(0.0 <= d < 1.0 for d in delays)
    assert len(delays) > 1


def test_policy_is_frozen() -> None:
    policy = ReconnectPolicy()
    with pytest.raises(AttributeError):
        policy.cap = 1.0  # type: ignore[misc]
