from replay.compare import CompareSpec, Side
from replay.compare.errors import compare_errors, compare_finish
from replay.compare.usage import compare_usage

SPEC = CompareSpec()


def test_both_ok():
    out = compare_errors({}, Side(ok=True), Side(ok=True), SPEC)
    assert out == {
        "b_error": False, "c_error": False, "b_timeout": False, "c_timeout": False,
        "b_error_class": None, "c_error_class": None,
    }  # fmt: skip


def test_candidate_timeout_and_baseline_http_error():
    b = Side(ok=False, error_class="http_500", error_message="server error")
    c = Side(ok=False, error_class="timeout")
    out = compare_errors({}, b, c, SPEC)
    assert out["b_error"] is True and out["c_error"] is True
    assert out["b_timeout"] is False and out["c_timeout"] is True
    assert out["b_error_class"] == "http_500" and out["c_error_class"] == "timeout"


def test_error_class_is_ignored_on_an_ok_side():
    out = compare_errors({}, Side(ok=True, error_class="timeout"), Side(ok=True), SPEC)
    assert out["b_timeout"] is False and out["b_error_class"] is None


def test_finish_truncation_only_counts_candidate_length():
    length, stop = Side(ok=True, finish_reason="length"), Side(ok=True, finish_reason="stop")
    assert compare_finish({}, stop, length, SPEC) == {
        "b_finish": "stop", "c_finish": "length", "finish_changed": True, "truncated": True,
    }  # fmt: skip
    assert compare_finish({}, length, stop, SPEC)["truncated"] is False
    both = compare_finish({}, length, length, SPEC)
    assert both["truncated"] is False and both["finish_changed"] is False


def test_finish_is_none_when_a_side_failed():
    out = compare_finish({}, Side(ok=True, finish_reason="stop"), Side(ok=False, finish_reason="stop"), SPEC)
    assert out == {"b_finish": "stop", "c_finish": None, "finish_changed": None, "truncated": None}


def test_usage_passes_numbers_through():
    b = Side(ok=True, latency_ms=500.0, ttft_ms=120.0, prompt_tokens=40, completion_tokens=10, cost_usd=0.001)
    c = Side(ok=False, latency_ms=None)
    out = compare_usage({}, b, c, SPEC)
    assert out["b_latency_ms"] == 500.0 and out["b_ttft_ms"] == 120.0
    assert out["b_tokens_in"] == 40 and out["b_tokens_out"] == 10 and out["b_cost_usd"] == 0.001
    assert out["c_latency_ms"] is None and out["c_tokens_out"] is None
