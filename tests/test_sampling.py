import random

from replay.sampling import SampleSpec, draw, select_ids


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
