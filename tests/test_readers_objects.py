"""The shared helpers of the readers of other tools' exports."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from replay.readers.objects import durations, instant, seconds_between


def test_instant_is_what_datetime_timestamp_says_to_the_microsecond():
    rng = random.Random(5)
    for _ in range(5000):
        moment = datetime(1970, 1, 1) + timedelta(seconds=rng.randrange(-2 * 10**9, 8 * 10**9), microseconds=rng.randrange(10**6))
        offset = timezone(timedelta(minutes=rng.randrange(-900, 900)))
        naive, aware = moment.isoformat(), moment.replace(tzinfo=offset).isoformat()
        assert instant(naive, "t") == moment.replace(tzinfo=timezone.utc).timestamp()  # a naive time is UTC
        assert instant(aware, "t") == moment.replace(tzinfo=offset).timestamp()
    assert instant("2026-12-01T07:00:00Z", "t") == 1796108400.0 and instant(12.5, "t") == 12.5


def test_durations_parse_the_start_once_and_say_the_field_that_needs_it():
    start = "2026-12-01T07:00:00.000000"
    assert durations(start, ("2026-12-01T07:00:01.250000", "end_time"), (None, "first_token_time")) == [1250.0, None]
    assert durations(None, ("2026-12-01T07:00:01", "end_time")) == [None]
    for ends in [(("2026-12-01T07:00:01", "end_time"),), ((None, "end_time"), ("2026-12-01T07:00:01", "first_token_time"))]:
        field = next(name for end, name in ends if end is not None)
        with pytest.raises(ValueError, match=f"^'{field}' must be an ISO 8601 time or epoch seconds, got 'soon'$"):
            durations("soon", *ends)
        with pytest.raises(ValueError, match=f"^'{field}' must be"):
            seconds_between("soon", ends[-1][0], field)
