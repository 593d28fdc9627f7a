import json

from replay.compare import CompareSpec, Policy, Side, compare_pair, divergence
from replay.types import ToolCall

JSON_SCHEMA = {
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "o", "schema": {"type": "object", "required": ["id"]}},
    }
}


def ok(text="Your order shipped on Monday.", **kwargs):
    return Side(ok=True, text=text, finish_reason=kwargs.pop("finish_reason", "stop"), **kwargs)


def score(baseline, candidate, request=None, spec=CompareSpec()):
    measures = compare_pair(request or {}, baseline, candidate, spec)
    return measures["divergence"], measures["reasons"]


def test_candidate_error_above_wording_change_above_identical():
    error, error_reasons = score(ok(), Side(ok=False, error_class="timeout"))
    wording, wording_reasons = score(ok(), ok("Your order was shipped on Monday."))
    same, same_reasons = score(ok(), ok())
    assert error > wording > same == 0
    assert error_reasons == ["candidate timed out, baseline answered"]
    assert wording_reasons and wording_reasons[0].startswith("text similarity")
    assert same_reasons == []


def test_normalised_equal_answers_do_not_diverge():
    assert score(ok("Paris."), ok("  paris"))[0] == 0


def test_improvement_ranks_but_below_the_regression():
    regression, _ = score(ok(), Side(ok=False, error_class="http_500"))
    improvement, reasons = score(Side(ok=False, error_class="http_500"), ok())
    assert 0 < improvement < regression
    assert reasons == ["candidate answered where baseline failed (http_500)"]


def test_both_failing_is_not_a_divergence():
    assert score(Side(ok=False, error_class="timeout"), Side(ok=False, error_class="http_500")) == (0, [])


def test_schema_flip_is_named_with_the_error():
    value, reasons = score(ok('{"id": 1}'), ok('{"name": "x"}'), JSON_SCHEMA)
    assert reasons[0].startswith("schema valid → invalid") and "'id' is a required property" in reasons[0]
    assert value > score(ok('{"id": 1}'), ok('{"id": 2}'), JSON_SCHEMA)[0]


def test_json_flip_is_not_counted_twice_as_a_schema_flip():
    value, reasons = score(ok('{"id": 1}'), ok('```json\n{"id": 1}\n```'), JSON_SCHEMA)
    assert reasons[0] == "JSON valid → invalid"
    assert not any(reason.startswith("schema") for reason in reasons)


def test_field_mismatches_name_the_paths():
    b = json.dumps({"id": 1, "a": 1, "b": 2, "c": 3, "d": 4})
    c = json.dumps({"id": 1, "a": 0, "b": 0, "c": 0, "d": 0})
    _, reasons = score(ok(b), ok(c), JSON_SCHEMA)
    assert "fields differ: a, b, c (+1 more)" in reasons


def test_tool_mismatch_truncation_refusal_and_policy():
    call = (ToolCall("1", "refund", '{"id": 1}'),)
    other = (ToolCall("1", "escalate", '{"id": 1}'),)
    tools, reasons = score(ok(None, tool_calls=call), ok(None, tool_calls=other))
    assert reasons == ["tool calls differ (1 → 1 calls)"]
    args, reasons = score(ok(None, tool_calls=call), ok(None, tool_calls=(ToolCall("1", "refund", '{"id": 2}'),)))
    assert reasons == ["tool arguments differ"] and args < tools
    _, reasons = score(ok(), ok("Your order shipped on", finish_reason="length"))
    assert reasons[0] == "candidate truncated (finish_reason length)"
    _, reasons = score(ok(), ok("I can't help with that."))
    assert reasons[0] == "candidate refused, baseline answered"
    spec = CompareSpec(policies=(Policy("no_email", r"\S+@\S+"),))
    value, reasons = score(ok(), ok("Your order shipped on Monday, ask bob@example.com"), spec=spec)
    assert reasons[0] == "policy violated: no_email"


def test_regression_directions_outrank_their_improvements():
    spec = CompareSpec(policies=(Policy("no_email", r"\S+@\S+"),))
    leak = "mail me at a@b.c"
    assert score(ok("fine"), ok(leak), spec=spec)[0] > score(ok(leak), ok("fine"), spec=spec)[0]
    refusal = "I can't help with that."
    assert score(ok("Sure."), ok(refusal))[0] > score(ok(refusal), ok("Sure."))[0]
    assert score(ok("a", finish_reason="stop"), ok("a", finish_reason="length"))[0] > score(
        ok("a", finish_reason="length"), ok("a", finish_reason="stop")
    )[0]


def test_divergence_tolerates_partial_measures():
    assert divergence({}) == (0, [])
    assert divergence({"similarity": 0.5, "normalized_match": False}) == (10.0, ["text similarity 0.50"])
