"""Reading the judge's answer, combining orders, identical answers, and the prompt."""

import pytest

from replay.judge import (
    BASELINE,
    CANDIDATE,
    DEFAULT_TEMPLATE,
    TIE,
    check_template,
    combine,
    outcome_of,
    parse_verdict,
    render_prompt,
    same_answer,
)
from replay.judge.family import family, same_family, same_model


@pytest.mark.parametrize("text, winner, reason", [
    ('{"winner": "A", "reason": "clearer"}', "A", "clearer"),
    ('```json\n{"winner": "b", "reason": "more complete"}\n```', "B", "more complete"),
    ('My verdict: {"winner": "Tie", "reason": "same"} — hope that helps', "tie", "same"),
    ('{"note": "thinking {a}"} then {"winner": "A"}', "A", ""),  # the first object with a winner
    ('{"winner": "A", "reason": {"why": 1}}', "A", '{"why": 1}'),
])  # fmt: skip
def test_a_json_verdict_is_found_in_fences_and_prose(text, winner, reason):
    assert parse_verdict(text) == (winner, reason)


@pytest.mark.parametrize("text", [
    None, "", "A is better", '{"winner": "C"}', '{"winner": 1}', '["A"]', '{"winner": "A"', "{not json}",
    '{"verdict": "A"}',
])  # fmt: skip
def test_anything_else_is_not_a_verdict(text):
    assert parse_verdict(text) is None


def test_a_long_reason_is_capped():
    assert len(parse_verdict('{"winner": "A", "reason": "' + "x" * 5000 + '"}').reason) == 1000


def test_a_label_verdict_becomes_a_verdict_about_the_candidate():
    assert [outcome_of("A", True), outcome_of("A", False), outcome_of("B", True), outcome_of("B", False),
            outcome_of("tie", True)] == [CANDIDATE, BASELINE, BASELINE, CANDIDATE, TIE]  # fmt: skip


def test_a_verdict_that_flips_with_the_order_is_a_tie():
    assert combine([CANDIDATE, CANDIDATE]) == CANDIDATE
    assert combine([CANDIDATE, BASELINE]) == TIE
    assert combine([CANDIDATE, TIE]) == TIE
    assert combine([BASELINE]) == BASELINE


def test_answers_identical_once_normalised_need_no_judge():
    assert same_answer("Your order ships today.", "your order  ships today")
    assert not same_answer("Your order ships today.", "Your order ships tomorrow.")


def test_the_default_prompt_shows_the_request_and_a_before_b():
    request = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is 7?"}]}
    prompt = render_prompt(None, "Be strict.", request, "first answer", "second answer")
    assert "system: Be brief.\nuser: Where is 7?" in prompt and "Be strict." in prompt
    assert prompt.index("first answer") < prompt.index("second answer")
    assert '{"winner": "A" | "B" | "tie", "reason":' in prompt


def test_a_template_placeholder_inside_an_answer_is_not_replaced():
    prompt = render_prompt("{answer_a} | {answer_b} | {rubric}", None, {}, "says {answer_b}", "B")
    assert prompt.startswith("says {answer_b} | B | Which answer")


def test_a_template_must_show_both_answers():
    assert check_template(DEFAULT_TEMPLATE) is None
    assert check_template("Compare {answer_a}") == "the template must contain {answer_b}"


def test_models_and_families():
    assert same_model("gpt-4o", "openai/GPT-4o") and not same_model("gpt-4o", "gpt-4o-mini")
    assert same_family("gpt-4o", "gpt-4o-mini") and family("claude-3-5-sonnet") == "claude"
    assert not same_family("gpt-4o", "claude-3-opus")
