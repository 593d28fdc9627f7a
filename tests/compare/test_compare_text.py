import pytest

from replay.compare import CompareSpec, Side
from replay.compare.text import compare_text, similarity

SPEC = CompareSpec()


def run(b_text, c_text, **kwargs):
    return compare_text({}, Side(ok=True, text=b_text, **kwargs), Side(ok=True, text=c_text, **kwargs), SPEC)


def test_identical():
    out = run("Your refund was issued.", "Your refund was issued.")
    assert out["exact_match"] is True and out["normalized_match"] is True
    assert out["similarity"] == 1.0 and out["length_delta"] == 0


def test_normalized_match_ignores_case_spacing_width_and_trailing_punctuation():
    out = run("  Your refund\nwas   issued.", "your REFUND was issued!!")
    assert out["exact_match"] is False and out["normalized_match"] is True
    assert run("ＰＡＲＩＳ", "paris")["normalized_match"] is True  # NFKC full-width
    assert run("Straße", "STRASSE")["normalized_match"] is True  # casefold


def test_leading_punctuation_and_words_still_matter():
    assert run("refund issued", "no refund issued")["normalized_match"] is False
    assert run("...yes", "yes")["normalized_match"] is False


def test_json_answers_equal_when_parsed_equal():
    out = run('{"a": 1, "b": [true, null]}', '{\n  "b": [true, null],\n  "a": 1\n}')
    assert out["exact_match"] is False and out["normalized_match"] is True
    assert run('{"a": 1}', '{"a": true}')["normalized_match"] is False  # true is not 1
    assert run('{"a": 1}', '{"a": 2}')["normalized_match"] is False


def test_similarity_is_order_sensitive_and_symmetric():
    a, b = "refund, not exchange", "exchange, not refund"
    assert similarity(a, b) < 0.8
    assert similarity(a, b) == similarity(b, a)
    assert similarity("", "") == 1.0
    assert similarity("abc", "") == 0.0


def test_small_wording_change_is_similar_but_not_equal():
    out = run("Your order shipped on Monday.", "Your order was shipped on Monday.")
    assert out["normalized_match"] is False
    assert 0.85 < out["similarity"] < 1.0


def test_empty_texts_and_tool_only_answers():
    out = compare_text({}, Side(ok=True, text=None), Side(ok=True, text=""), SPEC)
    assert out["exact_match"] is True and out["similarity"] == 1.0 and out["length_delta"] == 0
    assert run("", "something")["similarity"] == 0.0


def test_deltas():
    b = Side(ok=True, text="abc", completion_tokens=10)
    c = Side(ok=True, text="abcdef", completion_tokens=7)
    out = compare_text({}, b, c, SPEC)
    assert out["length_delta"] == 3 and out["token_delta"] == -3
    assert compare_text({}, b, Side(ok=True, text="x"), SPEC)["token_delta"] is None


@pytest.mark.parametrize("b_ok,c_ok", [(False, True), (True, False), (False, False)])
def test_not_applicable_unless_both_ok(b_ok, c_ok):
    out = compare_text({}, Side(ok=b_ok, text="a"), Side(ok=c_ok, text="a"), SPEC)
    assert set(out.values()) == {None}
