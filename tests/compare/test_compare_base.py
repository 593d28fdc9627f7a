import json

import pytest

from replay.compare import (
    COMPARATORS,
    DEFAULT_REFUSAL_PHRASES,
    CompareSpec,
    Policy,
    Side,
    compare_pair,
    divergence,
    register_comparator,
)
from replay.store import RESULT_COLUMNS
from replay.types import ToolCall

EXPECTED_KEYS = {
    "b_error", "c_error", "b_timeout", "c_timeout", "b_error_class", "c_error_class",
    "b_finish", "c_finish", "finish_changed", "truncated",
    "exact_match", "normalized_match", "similarity", "length_delta", "token_delta",
    "json_required", "b_json_valid", "c_json_valid", "schema_required", "b_schema_valid", "c_schema_valid",
    "c_schema_error", "fields", "field_accuracy", "field_mismatches",
    "b_tool_calls", "c_tool_calls", "tools_agree", "tool_names_agree",
    "b_refused", "c_refused", "b_policy_pass", "c_policy_pass", "b_policy_violations", "c_policy_violations",
    "b_latency_ms", "c_latency_ms", "b_ttft_ms", "c_ttft_ms", "b_tokens_in", "c_tokens_in",
    "b_tokens_out", "c_tokens_out", "b_cost_usd", "c_cost_usd",
    "divergence", "reasons",
}  # fmt: skip


def result_row(**values):
    """A dict shaped exactly like one yielded by Store.results()."""
    row = dict.fromkeys(RESULT_COLUMNS)
    row.update(
        request_id="r1", arm="candidate", status="ok", tokens_estimated=0, attempts=1,
        attempts_json="[]", params_json="{}", completed_at=1.0, seq=0, metadata_json="{}",
    )  # fmt: skip
    row.update(values)
    return row


def test_from_row_reads_an_ok_row_with_tool_calls():
    calls = [{"id": "call_1", "name": "lookup", "arguments": '{"order": 12}'}]
    row = result_row(
        text="Looking it up", tool_calls_json=json.dumps(calls), refusal=None, finish_reason="tool_calls",
        latency_ms=412.5, ttft_ms=80.0, prompt_tokens=30, completion_tokens=12, cost_usd=0.0021,
    )  # fmt: skip
    side = Side.from_row(row)
    assert side == Side(
        ok=True, text="Looking it up", tool_calls=(ToolCall("call_1", "lookup", '{"order": 12}'),),
        finish_reason="tool_calls", latency_ms=412.5, ttft_ms=80.0, prompt_tokens=30, completion_tokens=12,
        cost_usd=0.0021,
    )  # fmt: skip


def test_from_row_reads_an_error_row():
    row = result_row(status="error", error_class="timeout", error_message="no complete answer within 30s")
    side = Side.from_row(row)
    assert not side.ok
    assert side.error_class == "timeout" and side.error_message.startswith("no complete")
    assert side.tool_calls == () and side.text is None


def test_from_row_keeps_non_string_arguments_comparable():
    row = result_row(tool_calls_json=json.dumps([{"id": None, "name": "f", "arguments": {"a": 1}}]))
    assert Side.from_row(row).tool_calls == (ToolCall(None, "f", '{"a": 1}'),)


def test_compare_pair_returns_every_key_and_is_json_serialisable():
    b = Side(ok=True, text="Paris", finish_reason="stop", latency_ms=100.0)
    c = Side(ok=True, text="Paris.", finish_reason="stop", latency_ms=90.0)
    measures = compare_pair({"messages": []}, b, c, CompareSpec())
    assert set(measures) == EXPECTED_KEYS
    assert json.loads(json.dumps(measures)) == measures
    assert measures["divergence"] == 0 and measures["reasons"] == []


def test_compare_pair_with_errors_is_json_serialisable_too():
    measures = compare_pair({}, Side(ok=False, error_class="http_500"), Side(ok=True, text="x"))
    assert set(measures) == EXPECTED_KEYS
    assert json.loads(json.dumps(measures)) == measures


def test_compare_pair_divergence_matches_divergence_function():
    b, c = Side(ok=True, text="yes"), Side(ok=False, error_class="timeout")
    measures = compare_pair({}, b, c)
    assert (measures["divergence"], measures["reasons"]) == divergence(measures)


def test_builtins_are_registered_in_order():
    assert list(COMPARATORS)[:7] == ["errors", "finish", "text", "structured", "tools", "safety", "usage"]


def test_register_comparator_adds_measures_and_refuses_duplicates():
    try:

        @register_comparator("test_words")
        def words(request, baseline, candidate, spec):
            return {"c_words": len((candidate.text or "").split())}

        assert compare_pair({}, Side(ok=True, text="a"), Side(ok=True, text="a b c"))["c_words"] == 3
        with pytest.raises(ValueError, match="already registered"):
            register_comparator("test_words")(words)
        register_comparator("test_words", replace=True)(lambda *args: {"c_words": -1})
        assert compare_pair({}, Side(ok=True), Side(ok=True))["c_words"] == -1
    finally:
        COMPARATORS.pop("test_words", None)
    assert "c_words" not in compare_pair({}, Side(ok=True), Side(ok=True))


def test_spec_rejects_bad_values_early():
    with pytest.raises(ValueError, match="json"):
        CompareSpec(json="sometimes")
    with pytest.raises(ValueError, match="bad JSON path"):
        CompareSpec(key_fields=("items[x]",))
    with pytest.raises(ValueError, match="policy 'p'"):
        CompareSpec(policies=(Policy("p", "([unclosed"),))
    with pytest.raises(ValueError, match="schema"):
        CompareSpec(schema={"type": "no-such-type"})


def test_spec_accepts_yaml_shapes():
    spec = CompareSpec(
        key_fields=["a", "b"], ignore_paths="meta.id", refusal_phrases=["no way"],
        policies=[{"name": "pii", "pattern": "ssn"}, Policy("x", "y")],
    )  # fmt: skip
    assert spec.key_fields == ("a", "b")
    assert spec.ignore_paths == ("meta.id",)
    assert spec.refusal_phrases == ("no way",)
    assert spec.policies == (Policy("pii", "ssn"), Policy("x", "y"))
    with pytest.raises(ValueError, match="exactly 'name' and 'pattern'"):
        CompareSpec(policies=[{"name": "pii", "regex": "ssn"}])


def test_default_refusal_phrases_cover_the_stock_openings():
    lowered = {phrase.lower() for phrase in DEFAULT_REFUSAL_PHRASES}
    assert {"i can't help with", "i cannot assist", "i'm sorry, but i can't", "i am unable to"} <= lowered
    assert "i'm sorry" not in lowered
