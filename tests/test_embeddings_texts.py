"""What is embedded of an answer, and the cosine of two stored vectors."""

import json
import struct

import numpy as np
import pytest

from replay.embeddings import EMPTY_DIGEST, MAX_CHARS, answer_text, cosines, pair_cosine, stored_answer_text, text_digest


def test_tool_calls_embed_as_name_and_canonical_arguments_so_key_order_does_not_matter():
    one = answer_text("Looking it up.", [{"name": "lookup", "arguments": '{"order": 7, "region": "eu"}'}])
    other = answer_text("Looking it up.", [{"name": "lookup", "arguments": '{ "region":"eu",  "order":7 }'}])
    assert one == other == 'Looking it up.\nlookup({"order":7,"region":"eu"})'
    assert answer_text(None, [{"name": "f", "arguments": "not json"}]) == "f(not json)"


def test_a_refusal_without_content_is_embedded_and_long_texts_are_cut():
    assert answer_text(None, (), "I can't help with that.") == "I can't help with that."
    assert answer_text("Sure.", (), "ignored") == "Sure."
    assert len(answer_text("x" * (MAX_CHARS + 5))) == MAX_CHARS
    assert answer_text(None) == "" and text_digest("") == EMPTY_DIGEST


def test_a_stored_answer_embeds_as_the_same_answer_in_memory():
    calls = [{"id": "c1", "name": "lookup", "arguments": '{"b": 1, "a": 2}'}]
    assert stored_answer_text("t", json.dumps(calls), None) == answer_text("t", calls)


def blob(*numbers):
    return struct.pack(f"<{len(numbers)}f", *numbers)


def test_cosines_of_known_vectors():
    values = cosines([blob(1, 0), blob(1, 1), blob(1, 0), blob(0, 0)], [blob(0, 1), blob(2, 2), blob(-3, 0), blob(1, 0)])
    assert values.tolist() == pytest.approx([0.0, 1.0, -1.0, 0.0])  # a zero vector has no direction: 0


def test_vectors_of_different_lengths_cannot_be_compared():
    with pytest.raises(ValueError, match="dimensions"):
        cosines([blob(1, 0)], [blob(1, 0, 0)])


def test_a_pair_is_one_when_the_texts_are_equal_and_zero_against_an_empty_answer():
    a, b, empty = text_digest("a"), text_digest("b"), EMPTY_DIGEST
    assert pair_cosine(a, a, {}) == 1.0 and pair_cosine(empty, empty, {}) == 1.0
    assert pair_cosine(a, empty, {}) == 0.0
    assert pair_cosine(a, b, {a: blob(1, 0)}) is None  # b's vector is missing
    assert pair_cosine(a, b, {a: blob(3, 4), b: blob(4, 3)}) == pytest.approx(24 / 25)
    assert isinstance(cosines([blob(1, 0)], [blob(1, 0)]), np.ndarray)
