import random
from email.utils import formatdate

import pytest

from replay.providers.openai_policy import parse_duration, plan_retry, ratelimit_reset, retry_hint
from replay.retry import backoff_delay


def test_backoff_follows_the_sdk_schedule_with_jitter():
    rng = random.Random(0)
    for n, base in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0]):
        delays = [backoff_delay(n, rng) for _ in range(200)]
        assert min(delays) >= base * 0.75 and max(delays) <= base
        assert max(delays) - min(delays) > base * 0.1  # really jittered


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "100", "retry-after": "9"}, 0.1),
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "20ms"}, 0.02),
        ({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1s"}, None),
        ({}, None),
    ],
)
def test_retry_hints(headers, expected):
    hint = retry_hint(headers)
    assert hint == pytest.approx(expected) if expected is not None else hint is None


def test_retry_after_http_date():
    now = 1_800_000_000.0
    assert retry_hint({"retry-after": formatdate(now + 30, usegmt=True)}, now=now) == pytest.approx(30, abs=1)


def test_parse_duration():
    assert parse_duration("1m30s") == 90
    assert parse_duration("1h") == 3600
    assert parse_duration("250ms") == 0.25
    assert parse_duration("soon") is None
    assert ratelimit_reset({"x-ratelimit-remaining-requests": "-1", "x-ratelimit-reset-requests": "1s"}) == 1.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 529])
def test_retryable_statuses(status):
    decision = plan_retry(attempt=1, max_attempts=3, status=status, rng=random.Random(1))
    assert decision.retry and not decision.fatal and 0.375 <= decision.delay_s <= 0.5


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_are_not_retried(status):
    assert not plan_retry(attempt=1, max_attempts=5, status=status).retry


def test_transport_errors_retry_until_max_attempts():
    assert plan_retry(attempt=4, max_attempts=5, status=None, transport_error=True).retry
    assert not plan_retry(attempt=5, max_attempts=5, status=None, transport_error=True).retry


@pytest.mark.parametrize("status, code", [(401, None), (403, None), (429, "insufficient_quota"), (301, None), (302, None), (307, None), (308, None)])
def test_fatal_answers_stop_the_arm(status, code):
    decision = plan_retry(attempt=1, max_attempts=5, status=status, error_code=code)
    assert decision.fatal and not decision.retry


def test_server_hint_wins_and_is_marked():
    decision = plan_retry(attempt=1, max_attempts=5, status=429, headers={"retry-after": "2"})
    assert decision.retry and decision.hinted and decision.delay_s == 2.0


def test_x_should_retry_overrides():
    assert not plan_retry(attempt=1, max_attempts=5, status=503, headers={"x-should-retry": "false"}).retry
    assert plan_retry(attempt=1, max_attempts=5, status=400, headers={"x-should-retry": "true"}).retry
