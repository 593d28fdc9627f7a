"""The cache key covers everything that shapes a verdict, and only that."""

from replay.judge import candidate_first, in_sample, verdict_key

BASE = ("judge", {"temperature": 0}, "tmpl {answer_a} {answer_b}", "rubric", {"messages": [{"role": "user", "content": "q"}]},
        "answer one", "answer two")  # fmt: skip


def test_every_input_changes_the_key():
    key = verdict_key(*BASE)
    for index, other in enumerate(["judge-2", {"temperature": 1}, "tmpl2 {answer_a} {answer_b}", "rubric 2",
                                   {"messages": []}, "answer 1", "answer 2"]):  # fmt: skip
        changed = list(BASE)
        changed[index] = other
        assert verdict_key(*changed) != key, index


def test_the_swapped_order_is_a_key_of_its_own_and_the_same_inputs_the_same_key():
    swapped = list(BASE)
    swapped[5], swapped[6] = BASE[6], BASE[5]
    assert verdict_key(*swapped) != verdict_key(*BASE)
    assert verdict_key(*BASE) == verdict_key(*[dict(x) if isinstance(x, dict) else x for x in BASE])


def test_the_order_is_drawn_from_the_seed_and_balanced():
    ids = [f"req-{i}" for i in range(4000)]
    firsts = [candidate_first(7, rid) for rid in ids]
    assert 1800 <= sum(firsts) <= 2200  # binomial(4000, 1/2): about 6 sigma either side
    assert firsts == [candidate_first(7, rid) for rid in ids]
    assert firsts != [candidate_first(8, rid) for rid in ids]


def test_the_sample_takes_its_share_and_the_same_pairs_again():
    ids = [f"req-{i}" for i in range(4000)]
    chosen = [rid for rid in ids if in_sample(3, rid, 0.25)]
    assert 850 <= len(chosen) <= 1150
    assert chosen == [rid for rid in ids if in_sample(3, rid, 0.25)]
    assert all(in_sample(3, rid, 1.0) for rid in ids[:50])
