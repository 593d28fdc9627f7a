import pytest

from replay.compare import CompareSpec, Side
from replay.compare.tools import arguments_equal, compare_tools
from replay.types import ToolCall

SPEC = CompareSpec()


def calls(*pairs):
    return tuple(ToolCall(f"call_{i}", name, arguments) for i, (name, arguments) in enumerate(pairs))


def run(b_calls, c_calls, b_ok=True, c_ok=True):
    return compare_tools({}, Side(ok=b_ok, tool_calls=b_calls), Side(ok=c_ok, tool_calls=c_calls), SPEC)


def test_no_tool_calls_on_either_side_is_not_applicable():
    assert run((), ()) == {"b_tool_calls": 0, "c_tool_calls": 0, "tools_agree": None, "tool_names_agree": None}


def test_a_failed_side_is_not_applicable():
    out = run(calls(("f", "{}")), (), c_ok=False)
    assert out == {"b_tool_calls": 1, "c_tool_calls": None, "tools_agree": None, "tool_names_agree": None}


def test_same_call_with_arguments_in_another_key_order_and_layout():
    out = run(calls(("lookup", '{"order": 12, "full": true}')), calls(("lookup", '{ "full": true,\n"order": 12 }')))
    assert out["tools_agree"] is True and out["tool_names_agree"] is True


def test_parallel_calls_in_another_order_agree():
    b = calls(("weather", '{"city": "Paris"}'), ("time", '{"tz": "CET"}'))
    c = calls(("time", '{"tz": "CET"}'), ("weather", '{"city": "Paris"}'))
    assert run(b, c)["tools_agree"] is True


def test_duplicate_names_are_matched_in_order():
    b = calls(("search", '{"q": "a"}'), ("search", '{"q": "b"}'))
    assert run(b, calls(("search", '{"q": "a"}'), ("search", '{"q": "b"}')))["tools_agree"] is True
    swapped = run(b, calls(("search", '{"q": "b"}'), ("search", '{"q": "a"}')))
    assert swapped["tools_agree"] is False and swapped["tool_names_agree"] is True


def test_different_counts_of_the_same_name_disagree():
    out = run(calls(("search", "{}"), ("search", "{}")), calls(("search", "{}")))
    assert out["tool_names_agree"] is False and out["tools_agree"] is False
    assert out["b_tool_calls"] == 2 and out["c_tool_calls"] == 1


def test_other_function_or_other_arguments():
    out = run(calls(("refund", '{"id": 1}')), calls(("escalate", '{"id": 1}')))
    assert out["tool_names_agree"] is False and out["tools_agree"] is False
    out = run(calls(("refund", '{"id": 1}')), calls(("refund", '{"id": 2}')))
    assert out["tool_names_agree"] is True and out["tools_agree"] is False


def test_one_side_calls_a_tool_and_the_other_answers_in_text():
    out = run(calls(("refund", "{}")), ())
    assert out["tools_agree"] is False and out["tool_names_agree"] is False


@pytest.mark.parametrize(
    "a,b,equal",
    [
        ('{"a": 1}', '{"a":1}', True),
        ('{"a": 1}', '{"a": 1.0}', True),
        ('{"a": 1}', '{"a": true}', False),
        ('{"a": "X"}', '{"a": "x"}', False),  # arguments are executed: no normalisation
        ('{"a": [1, 2]}', '{"a": [2, 1]}', False),
        ("", "{}", True),  # servers send "" for a function without parameters
        ("  ", "{}", True),
        ('{"a": 1', '{"a": 1', True),  # unparseable: raw strings
        ('{"a": 1', '{"a":1', False),
        ('{"a": 1', '{"a": 1}', False),
    ],
)
def test_arguments_equal(a, b, equal):
    assert arguments_equal(a, b) is equal
    assert arguments_equal(b, a) is equal
