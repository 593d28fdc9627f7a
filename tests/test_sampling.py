import random
from collections import Counter
from datetime import datetime, timezone

import pytest

from replay.sampling import (NONE, AllocationError, SampleSpec, Selector, allocate, draw, resolve_moment, select_ids, select_units,
                             stratum_of)
from replay.types import LogRecord


def test_draw_is_deterministic_and_seeded():
    assert draw(7, "abc") == draw(7, "abc")
    assert draw(7, "abc") != draw(8, "abc")
    assert 0 <= draw(1, "x") < 1


def test_rate_selects_about_the_rate():
    ids = [f"id-{i}" for i in range(20000)]
    chosen = select_ids(ids, SampleSpec(rate=0.2, seed=3))
    assert 0.19 < len(chosen) / len(ids) < 0.21


def test_selection_ignores_order_and_neighbours():
    ids = [f"id-{i}" for i in range(3000)]
    spec = SampleSpec(rate=0.5, max=100, seed=11)
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    first = select_ids(ids, spec)
    assert len(first) == 100
    assert select_ids(shuffled, spec) == first
    # a record's membership does not depend on records that are not sampled anyway
    assert select_ids(ids + ["extra-%d" % i for i in range(50)], SampleSpec(rate=0.5, seed=11)) >= select_ids(ids, SampleSpec(rate=0.5, seed=11))


def test_max_keeps_the_smallest_draws():
    ids = [f"id-{i}" for i in range(500)]
    spec = SampleSpec(rate=1.0, max=10, seed=5)
    expected = set(sorted(ids, key=lambda i: draw(5, i))[:10])
    assert select_ids(ids, spec) == expected


# --- time windows, strata, dedupe (the Selector) ------------------------------------------------


NOW = datetime(2026, 11, 15, 12, 0, tzinfo=timezone.utc)


def rec(record_id, timestamp=None, request=None, **metadata):
    return LogRecord(id=record_id, request=request or {"model": "m", "messages": [{"role": "user", "content": record_id}]},
                     timestamp=timestamp, metadata=metadata)  # fmt: skip


def selection(records, **spec):
    selector = Selector(SampleSpec(**spec), mix_keys=("category",))
    for record in records:
        selector.offer(record)
    return selector.result()


@pytest.mark.parametrize("text, expected", [
    ("2026-11-01T09:30:00Z", "2026-11-01T09:30:00Z"),
    ("2026-11-01T09:30:00+02:00", "2026-11-01T07:30:00Z"),  # an offset: converted to UTC
    ("2026-11-01T09:30:00", "2026-11-01T09:30:00Z"),  # no zone: UTC
    ("2026-11-01", "2026-11-01T00:00:00Z"),  # a date: its midnight, UTC
    ("2026-11-01 09:30:00+00:00", "2026-11-01T09:30:00Z"),  # as YAML's timestamps come through the overrides
    ("7d", "2026-11-08T12:00:00Z"),
    ("12h", "2026-11-15T00:00:00Z"),
    ("30m", "2026-11-15T11:30:00Z"),
    ("2w", "2026-11-01T12:00:00Z"),
])  # fmt: skip
def test_times_resolve_to_utc_and_spans_count_back_from_now(text, expected):
    assert resolve_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "7 days", "-7d", "7y", "", "2026-13-01"])
def test_a_bad_time_says_what_is_accepted(text):
    with pytest.raises(ValueError, match=r"expected an ISO 8601 time \(2026-11-01T09:00:00Z\) or a span before now such as 7d"):
        resolve_moment(text, NOW)


def test_the_window_keeps_since_drops_until_and_counts_records_without_a_time():
    records = [rec("early", "2026-11-01T23:59:59Z"), rec("first", "2026-11-02T00:00:00Z"),
               rec("offset", "2026-11-02T01:00:00+02:00"),  # 2026-11-01T23:00Z: before the window
               rec("zoneless", "2026-11-03T10:00:00"), rec("last", "2026-11-04T23:59:59Z"),
               rec("at-until", "2026-11-05T00:00:00Z"), rec("untimed"), rec("untimed-2")]  # fmt: skip
    chosen = selection(records, since="2026-11-02T00:00:00Z", until="2026-11-05T00:00:00Z")
    assert chosen.ids == {"first", "zoneless", "last"}
    assert chosen.without_timestamp == 2 and chosen.in_window == 3
    mix = chosen.mix
    assert (mix["outside_window"], mix["without_timestamp"], mix["records"], mix["sampled"]) == (3, 2, 8, 3)
    assert mix["log_range"] == {"first": "2026-11-01T23:00:00Z", "last": "2026-11-05T00:00:00Z"}
    assert mix["sample_range"] == {"first": "2026-11-02T00:00:00Z", "last": "2026-11-04T23:59:59Z"}


def test_allocation_is_proportional_with_floors_and_largest_remainders():
    # quotas 12, 6, 1.8, 0.2: c and d are below the floor (d has only 1); the other 17 are shared 11.33 / 5.67
    assert allocate({"a": 60, "b": 30, "c": 9, "d": 1}, 20, 2) == {"a": 11, "b": 6, "c": 2, "d": 1}
    # no floor binds: 10 * (5, 3, 2) / 10 exactly
    assert allocate({"a": 50, "b": 30, "c": 20}, 10, 1) == {"a": 5, "b": 3, "c": 2}
    # remainders 1/3 each: the larger strata first, then by name
    assert allocate({"x": 10, "y": 10, "z": 20}, 4, 0) == {"x": 1, "y": 1, "z": 2}
    assert allocate({"x": 10, "y": 10, "z": 10}, 4, 0) == {"x": 2, "y": 1, "z": 1}
    assert allocate({"a": 3, "b": 2}, 10, 5) == {"a": 3, "b": 2}  # fewer than max: all of them
    with pytest.raises(AllocationError, match="3 strata at 4 each need 12 records"):
        allocate({"a": 100, "b": 100, "c": 100}, 10, 4)


def test_strata_get_their_allocation_and_the_smallest_draws_within_each():
    records = [rec(f"a{i}", category="a") for i in range(60)] + [rec(f"b{i}", category="b") for i in range(30)] \
        + [rec(f"c{i}", category="c") for i in range(9)] + [rec("d0", category="d")]  # fmt: skip
    chosen = selection(records, max=20, seed=4, stratify_by=("category",), min_per_stratum=2)
    per_stratum = Counter(record_id[0] for record_id in chosen.ids)
    assert per_stratum == {"a": 11, "b": 6, "c": 2, "d": 1}
    for stratum, count in per_stratum.items():
        ids = [r.id for r in records if r.id[0] == stratum]
        assert {i for i in chosen.ids if i[0] == stratum} == set(sorted(ids, key=lambda i: draw(4, i))[:count])
    table = chosen.mix["tables"][0]
    assert table["key"] == "category" and chosen.mix["min_per_stratum"] == 2
    assert table["values"] == [{"value": "a", "log": 60, "sample": 11}, {"value": "b", "log": 30, "sample": 6},
                               {"value": "c", "log": 9, "sample": 2}, {"value": "d", "log": 1, "sample": 1}]  # fmt: skip


def test_without_max_a_stratum_below_its_floor_is_topped_up_with_its_smallest_draws():
    records = [rec(f"a{i}", category="a") for i in range(1000)] + [rec(f"b{i}", category="b") for i in range(20)]
    chosen = selection(records, rate=0.05, seed=2, stratify_by=("category",), min_per_stratum=5)
    b_ids = [r.id for r in records if r.id[0] == "b"]
    below = {i for i in b_ids if draw(2, i) < 0.05}
    assert len(below) < 5  # the rate alone would leave b under its floor
    assert {i for i in chosen.ids if i[0] == "b"} == set(sorted(b_ids, key=lambda i: draw(2, i))[:5])
    assert {i for i in chosen.ids if i[0] == "a"} == {r.id for r in records[:1000] if draw(2, r.id) < 0.05}


def test_time_strata_read_the_utc_hour_and_weekday():
    monday_late = rec("x", "2026-11-03T01:30:00+02:00")  # 2026-11-02T23:30Z, a Monday
    moment = datetime(2026, 11, 2, 23, 30, tzinfo=timezone.utc).timestamp()
    assert stratum_of(monday_late, ("hour_of_day",), moment) == "23"
    assert stratum_of(monday_late, ("weekday",), moment) == "Mon"
    assert stratum_of(monday_late, ("weekday", "category"), moment) == f"Mon, {NONE}"
    assert stratum_of(rec("y"), ("hour_of_day",), None) == NONE


def test_hour_of_day_spreads_the_sample_over_the_whole_day():
    records = [rec(f"r{h}-{i}", f"2026-11-02T{h:02d}:{i:02d}:00Z") for h in range(24) for i in range(10 if h < 12 else 30)]
    chosen = selection(records, max=48, stratify_by=("hour_of_day",))
    hours = Counter(record_id.split("-")[0] for record_id in chosen.ids)
    # 120 records in the morning, 360 in the afternoon: 12 and 36 of the 48, one and three an hour
    assert hours == {**{f"r{h}": 1 for h in range(12)}, **{f"r{h}": 3 for h in range(12, 24)}}


def test_the_sample_is_the_same_whatever_the_file_order():
    records = [rec(f"r{i}", f"2026-11-{1 + i % 9:02d}T{i % 24:02d}:00:00Z",
                   request={"model": "m", "messages": [{"role": "user", "content": f"q{i % 37}"}]}, category="abc"[i % 3])
               for i in range(600)]  # fmt: skip
    spec = dict(max=90, seed=9, since="2026-11-02T00:00:00Z", stratify_by=("category", "weekday"), dedupe=True)
    first = selection(records, **spec)
    shuffled = records[:]
    random.Random(5).shuffle(shuffled)
    again = selection(shuffled, **spec)
    assert first.ids == again.ids and first.weights == again.weights and first.mix == again.mix
    assert sum(first.weights.get(i, 1) for i in first.ids) == first.selected == 90


def test_dedupe_replays_identical_requests_once_weighted_by_their_copies():
    same = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    reordered = {"temperature": 0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}  # same JSON, other key order
    other_model = {**same, "model": "m2"}  # the model is part of the request as sent
    records = [rec("a", request=same), rec("b", request=reordered), rec("c", request=same), rec("d", request=other_model),
               rec("e")]  # fmt: skip
    chosen = selection(records, dedupe=True, seed=1)
    representative = min("abc", key=lambda i: draw(1, i))
    assert chosen.ids == {representative, "d", "e"}
    assert chosen.weights == {representative: 3}
    assert chosen.mix["sampled"] == 5 and chosen.mix["replayed"] == 3


def test_a_unit_key_samples_whole_conversations_as_select_units_does():
    records = [rec(f"s{s}-t{t}", timestamp=f"2026-11-02T10:{t:02d}:00Z") for s in range(50) for t in range(4)]
    sessions = {r.id: r.id.split("-")[0] for r in records}
    for spec in (SampleSpec(max=10, seed=3), SampleSpec(max=10, seed=4), SampleSpec(rate=0.3, seed=3)):
        selector = Selector(SampleSpec(**{**spec.__dict__, "since": "2026-11-01T00:00:00Z"}))
        for record in reversed(records):
            selector.offer(record, unit=sessions[record.id])
        chosen = selector.result().ids
        # the same conversations as the plain sampler picks (with max, the one crossing it left out whole)
        assert chosen == select_units([(r.id, sessions[r.id]) for r in records], spec)
        assert set(Counter(sessions[i] for i in chosen).values()) <= {4}
    assert len(chosen) == 4 * len({sessions[i] for i in chosen}) > 0


def test_too_many_strata_is_refused():
    records = [rec(f"r{i}", user=f"u{i}") for i in range(150)]
    with pytest.raises(AllocationError, match="sample.stratify_by: user has more than 100 distinct values"):
        selection(records, stratify_by=("user",))


def test_the_mix_caps_the_values_it_keeps():
    records = [rec(f"r{i}", category=f"c{i % 70:02d}") for i in range(700)]
    mix = selection(records, max=70, dedupe=True, seed=1).mix
    table = mix["tables"][0]
    assert len(table["values"]) == 51 and table["values"][-1]["value"] == "(other)"
    assert table["values"][-1]["log"] == 200 and table["log_total"] == 700 and table["sample_total"] == 70
    assert [row["log"] for row in table["values"][:50]] == [10] * 50
