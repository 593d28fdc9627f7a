"""The ids kept for the duplicate check and the batch join, past the window that keeps them as strings."""

from __future__ import annotations

import json

import pytest

from replay.errors import LogFormatError
from replay.readers import ReadStats, iter_records
from replay.readers import ids as ids_module
from replay.readers.ids import HashIndex, SeenIds
from replay.readers.openai_batch import answer_for
from replay.types import Location


def test_an_id_moved_into_the_arrays_is_found_with_its_first_location():
    seen = SeenIds(window=4)
    places = [Location("a.jsonl", 1), Location("b.parquet", None, 7), Location("c"), Location("a.jsonl", 2 ** 37)]
    for number, place in enumerate(places * 3):
        assert seen.first(f"id-{number}", place) is None
    assert seen.hashes is not None and len(seen.hashes) == 12  # every window moved
    for number, place in enumerate(places * 3):
        assert seen.first(f"id-{number}", Location("later.jsonl", 99)) == place
    assert seen.first("id-12", Location("x", 1)) is None  # new, after all that


def test_a_location_the_packed_int_cannot_hold_is_kept_whole():
    seen = SeenIds(window=2)
    odd = [Location("a", 3, 4), Location("a", 2 ** 40)]  # a line and an index; a line past 38 bits
    seen.first("x", odd[0]), seen.first("y", odd[1])
    seen.first("z", Location("a", 1)), seen.first("w", Location("a", 2))
    assert (seen.first("x", Location("b", 1)), seen.first("y", Location("b", 1))) == tuple(odd)


def test_ids_sharing_a_hash_are_told_apart_by_the_second_one(monkeypatch):
    seen = SeenIds(window=2)
    monkeypatch.setattr(ids_module, "hash", lambda text: 7 if not text.endswith("\x00") else len(text), raising=False)
    seen.first("aa", Location("f", 1)), seen.first("bbb", Location("f", 2))
    assert seen.first("cc", Location("f", 3)) == Location("f", 1)  # same hash and check: taken for "aa"
    assert seen.first("dddd", Location("f", 4)) is None  # same hash, another check: a new id


def test_a_duplicate_far_apart_in_a_log_names_both_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(ids_module, "WINDOW", 8)
    path = tmp_path / "log.jsonl"
    lines = [{"id": f"r{n}", "request": {"messages": [{"role": "user", "content": "hi"}]}} for n in range(40)]
    lines.append(lines[2])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(LogFormatError, match=rf"^{path}:41: duplicate id 'r2' \(first at {path}:3\)$"):
        list(iter_records([str(path)], fmt="shadow"))
    stats = ReadStats()
    assert len(list(iter_records([str(path)], fmt="shadow", stats=stats, skip_invalid=True))) == 40
    assert stats.invalid == 1


def test_the_index_gives_every_entry_of_a_hash_in_the_order_added():
    index = HashIndex()
    for number, key in enumerate(["b", "a", "c", "a", "b"]):
        index.add(key, number)
    index.freeze()
    assert (list(index.candidates("a")), list(index.candidates("b")), list(index.candidates("zz"))) == ([1, 3], [0, 4], [])
    assert list(HashIndex().freeze().candidates("a")) == []


def test_the_join_reads_past_an_answer_of_another_id_with_the_same_hash(tmp_path, monkeypatch):
    answers = tmp_path / "out.jsonl"
    lines = [{"custom_id": "other", "n": 1}, {"custom_id": "req", "n": 2}, {"custom_id": "req", "n": 3}]
    texts = [json.dumps(line) + "\n" for line in lines]
    answers.write_text("".join(texts))
    index = HashIndex()
    index.add("req", 0)  # as if "other" and "req" shared a hash: "other" was added under it first
    index.add("req", len(texts[0]))
    index.freeze()
    handles: dict = {}
    try:
        assert answer_for("req", index, [str(answers)], handles, 1 << 20) == lines[1]
        monkeypatch.setattr(HashIndex, "candidates", lambda self, key: iter([0]))
        assert answer_for("req", index, [str(answers)], handles, 1 << 20) is None
    finally:
        for handle in handles.values():
            handle.close()
