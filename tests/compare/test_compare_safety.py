import pytest

from replay.compare import CompareSpec, Policy, Side
from replay.compare.safety import compare_safety, refused
from replay.types import ToolCall

SPEC = CompareSpec()
PHRASES = SPEC.refusal_phrases


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that request.",
        "I’m sorry, but I can’t share that.",  # curly apostrophes
        "**I CANNOT ASSIST** with this.",
        "Thanks for asking.  I'm  unable to assist with account deletion.",
        "x" * 190 + " I am unable to do this",  # begins inside the first 200 characters
    ],
)
def test_refusal_phrases(text):
    assert refused(Side(ok=True, text=text), PHRASES) is True


@pytest.mark.parametrize(
    "text",
    [
        "Sure, I can help with that.",
        "I'm sorry for the delay: your order shipped today.",
        "x" * 200 + " I am unable to do this",  # too far in
        "Hi can't help with... (a typo, not a refusal)",  # "i can't help with" inside a word
        "",
        None,
    ],
)
def test_not_refusals(text):
    assert refused(Side(ok=True, text=text), PHRASES) is False


def test_refusal_field_and_content_filter():
    assert refused(Side(ok=True, refusal="I can't do that."), PHRASES) is True
    assert refused(Side(ok=True, refusal="  "), PHRASES) is False
    assert refused(Side(ok=True, text="", finish_reason="content_filter"), PHRASES) is True


def test_custom_phrases_replace_the_defaults():
    assert refused(Side(ok=True, text="Computer says no."), ("computer says no",)) is True
    assert refused(Side(ok=True, text="I can't help with that."), ("computer says no",)) is False
    assert refused(Side(ok=True, text="I can't help with that."), ()) is False


def test_compare_safety_per_side():
    b = Side(ok=True, text="Here is your answer.")
    c = Side(ok=True, text="I cannot help with that.")
    out = compare_safety({}, b, c, SPEC)
    assert out == {
        "b_refused": False, "c_refused": True, "b_policy_pass": True, "c_policy_pass": True,
        "b_policy_violations": [], "c_policy_violations": [],
    }  # fmt: skip


def test_failed_side_is_none():
    out = compare_safety({}, Side(ok=False), Side(ok=True, text="ok"), CompareSpec(policies=(Policy("p", "x"),)))
    assert out["b_refused"] is None and out["b_policy_pass"] is None and out["b_policy_violations"] is None
    assert out["c_policy_pass"] is True and out["c_policy_violations"] == []


POLICIES = (
    Policy("no_email", r"[\w.+-]+@[\w-]+\.[\w.]+"),
    Policy("no_competitor", r"\bacme\s+corp\b"),
)


def test_policies_on_text_case_insensitive():
    spec = CompareSpec(policies=POLICIES)
    b = Side(ok=True, text="Contact support.")
    c = Side(ok=True, text="Try ACME  Corp or write to bob@example.com")
    out = compare_safety({}, b, c, spec)
    assert out["b_policy_pass"] is True and out["b_policy_violations"] == []
    assert out["c_policy_pass"] is False and out["c_policy_violations"] == ["no_email", "no_competitor"]


def test_policies_on_tool_call_arguments():
    spec = CompareSpec(policies=POLICIES)
    c = Side(ok=True, text=None, tool_calls=(ToolCall("1", "send_mail", '{"to": "eve@example.org"}'),))
    out = compare_safety({}, Side(ok=True, text="fine"), c, spec)
    assert out["c_policy_violations"] == ["no_email"]


def test_policies_sharing_a_name_report_it_once():
    spec = CompareSpec(policies=(Policy("pii", r"\d{3}-\d{2}-\d{4}"), Policy("pii", r"@example\.com")))
    out = compare_safety({}, Side(ok=True, text="a"), Side(ok=True, text="123-45-6789 a@example.com"), spec)
    assert out["c_policy_violations"] == ["pii"]
