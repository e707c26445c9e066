"""The token bucket of each API key, in memory, with a clock the test moves."""

from __future__ import annotations

import pytest

from ingest.ratelimit import Decision, MemoryRateLimiter, share_out, take


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_a_key_may_burst_up_to_its_rate_per_minute_then_waits(clock):
    limiter = MemoryRateLimiter(clock)
    decisions = [await limiter.acquire("webchat", 6) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 6 + [False]
    # Six a minute is one token every ten seconds.
    assert decisions[-1].retry_after == pytest.approx(10.0)


async def test_tokens_come_back_continuously(clock):
    limiter = MemoryRateLimiter(clock)
    for _ in range(6):
        await limiter.acquire("webchat", 6)
    clock.now += 4.0
    refused = await limiter.acquire("webchat", 6)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(6.0)
    clock.now += 6.0
    assert (await limiter.acquire("webchat", 6)).allowed
    assert not (await limiter.acquire("webchat", 6)).allowed


async def test_a_bucket_never_holds_more_than_one_minute_of_tokens(clock):
    limiter = MemoryRateLimiter(clock)
    await limiter.acquire("webchat", 3)
    clock.now += 3600
    decisions = [await limiter.acquire("webchat", 3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]


async def test_each_key_has_its_own_bucket(clock):
    limiter = MemoryRateLimiter(clock)
    assert (await limiter.acquire("webchat", 1)).allowed
    assert not (await limiter.acquire("webchat", 1)).allowed
    assert (await limiter.acquire("crm", 1)).allowed


def test_a_clock_that_goes_back_refills_nothing():
    decision, left = take(0.5, -30.0, 60.0)
    assert not decision.allowed and left == 0.5


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(seconds, header):
    assert Decision(False, seconds).retry_after_header() == header


def test_a_shared_take_is_shared_out_as_one_by_one_takes_would_be():
    # Ten requests at once on a bucket of 6 a minute holding 3.5 tokens.
    shared = share_out(10, 3, 0.5, 6.0)
    tokens, one_by_one = 3.5, []
    for _ in range(10):
        decision, tokens = take(tokens, 0.0, 6.0)
        one_by_one.append(decision)
    assert [d.allowed for d in shared] == [d.allowed for d in one_by_one]
    assert shared == one_by_one
