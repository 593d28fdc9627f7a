import pytest

from replay.compare import CompareSpec, Side
from replay.compare.paths import ANY, parse_path, render_path
from replay.compare.structured import compare_structured
from replay.compare.values import field_equal, parse_iso

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}},
    "required": ["name", "qty"],
}
JSON_OBJECT = {"response_format": {"type": "json_object"}}
JSON_SCHEMA = {"response_format": {"type": "json_schema", "json_schema": {"name": "order", "schema": SCHEMA}}}


def run(b_text, c_text, request=None, **spec):
    b, c = Side(ok=True, text=b_text), Side(ok=True, text=c_text)
    return compare_structured(request or {}, b, c, CompareSpec(**spec))


# --- JSON validity ----------------------------------------------------------------


def test_json_required_follows_response_format():
    assert run("x", "y", JSON_OBJECT)["json_required"] is True
    assert run("x", "y", JSON_SCHEMA)["json_required"] is True
    assert run("x", "y", {"response_format": {"type": "text"}})["json_required"] is False
    assert run("x", "y", {})["json_required"] is False


def test_json_mode_always_and_never_override_the_request():
    out = run('{"a": 1}', "nope", {}, json="always")
    assert out["json_required"] is True and out["b_json_valid"] is True and out["c_json_valid"] is False
    out = run('{"a": 1}', "nope", JSON_OBJECT, json="never")
    assert out["json_required"] is False and out["b_json_valid"] is None and out["c_json_valid"] is None


def test_fenced_json_is_not_valid():
    out = run('{"a": 1}', '```json\n{"a": 1}\n```', JSON_OBJECT)
    assert out["b_json_valid"] is True and out["c_json_valid"] is False
    assert out["fields"] is None and out["field_accuracy"] is None


def test_nan_and_trailing_prose_are_not_json():
    out = run('{"a": NaN}', '{"a": 1} hope this helps', JSON_OBJECT)
    assert out["b_json_valid"] is False and out["c_json_valid"] is False


def test_validity_is_none_for_a_failed_side():
    b, c = Side(ok=False, error_class="timeout"), Side(ok=True, text="{}")
    out = compare_structured(JSON_OBJECT, b, c, CompareSpec())
    assert out["b_json_valid"] is None and out["c_json_valid"] is True
    assert out["fields"] is None


def test_tool_only_answer_is_not_json_when_json_is_required():
    out = run('{"a": 1}', None, JSON_OBJECT)
    assert out["c_json_valid"] is False


# --- schema -----------------------------------------------------------------------


def test_schema_from_the_request():
    out = run('{"name": "a", "qty": 2}', '{"name": "a", "qty": "2"}', JSON_SCHEMA)
    assert out["schema_required"] is True
    assert out["b_schema_valid"] is True and out["c_schema_valid"] is False
    assert "qty" in out["c_schema_error"] and "integer" in out["c_schema_error"]


def test_spec_schema_overrides_the_request_and_implies_json():
    strict = {"type": "object", "required": ["id"]}
    out = run('{"id": 1}', '{"name": "a", "qty": 2}', JSON_SCHEMA, schema=strict)
    assert out["b_schema_valid"] is True and out["c_schema_valid"] is False
    assert "'id' is a required property" in out["c_schema_error"]
    out = run('{"id": 1}', '{"id": 2}', {}, schema=strict)  # no response_format, still JSON
    assert out["json_required"] is True and out["schema_required"] is True and out["c_schema_valid"] is True


def test_invalid_json_fails_the_schema():
    out = run("not json", "```json\n{}\n```", JSON_SCHEMA)
    assert out["b_schema_valid"] is False and out["c_schema_valid"] is False
    assert out["c_schema_error"] == "not valid JSON"


def test_no_schema_means_not_required():
    out = run('{"a": 1}', '{"a": 1}', JSON_OBJECT)
    assert out["schema_required"] is False
    assert out["b_schema_valid"] is None and out["c_schema_valid"] is None and out["c_schema_error"] is None


def test_a_broken_schema_in_a_request_does_not_raise():
    request = {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 12}}}}
    out = run("{}", "{}", request)
    assert out["schema_required"] is True and out["c_schema_valid"] is None
    assert "schema itself is invalid" in out["c_schema_error"]


def test_request_schema_cached_by_value_gives_the_same_answers():
    first = run('{"name": "a", "qty": 1}', '{"name": "a"}', JSON_SCHEMA)
    copy = {"response_format": {"type": "json_schema", "json_schema": {"schema": dict(SCHEMA)}}}
    second = run('{"name": "a", "qty": 1}', '{"name": "a"}', copy)
    assert first == second and second["c_schema_valid"] is False


# --- key fields ---------------------------------------------------------------------


def test_every_baseline_leaf_by_default():
    b = '{"customer": {"name": "Ann Lee", "vip": true}, "items": [{"sku": "A1", "qty": 2}], "tags": []}'
    c = '{"customer": {"name": "ann  lee", "vip": true}, "items": [{"sku": "A2", "qty": 2}], "tags": [], "extra": 1}'
    out = run(b, c, JSON_OBJECT)
    assert out["fields"] == {
        "customer.name": True, "customer.vip": True, "items[0].sku": False, "items[0].qty": True, "tags": True,
    }  # fmt: skip
    assert out["field_accuracy"] == pytest.approx(4 / 5)
    assert out["field_mismatches"] == ["items[0].sku"]


def test_fields_compared_for_json_objects_even_without_json_mode():
    out = run('{"a": 1}', '{"a": 2}', {})
    assert out["fields"] == {"a": False}
    assert run("42", "43", {})["fields"] is None  # plain-text answers that happen to be numbers


def test_wildcard_expands_over_both_lists():
    b = '{"items": [{"sku": "A"}, {"sku": "B"}]}'
    c = '{"items": [{"sku": "A"}, {"sku": "X"}, {"sku": "C"}]}'
    out = run(b, c, JSON_OBJECT, key_fields=("$.items[*].sku",))
    assert out["fields"] == {"items[0].sku": True, "items[1].sku": False, "items[2].sku": False}


def test_explicit_fields_missing_on_one_side_fail_and_on_both_are_skipped():
    out = run('{"a": 1, "b": 2}', '{"a": 1}', JSON_OBJECT, key_fields=("a", "b", "nowhere"))
    assert out["fields"] == {"a": True, "b": False}
    assert out["field_mismatches"] == ["b"]


def test_no_compared_field_gives_no_accuracy():
    out = run('{"a": 1}', '{"a": 1}', JSON_OBJECT, key_fields=("nowhere",))
    assert out["fields"] == {} and out["field_accuracy"] is None and out["field_mismatches"] == []


def test_ignore_paths_with_wildcards_and_prefixes():
    b = '{"id": "r-1", "meta": {"ts": 1, "by": "x"}, "items": [{"id": 1, "sku": "A"}, {"id": 2, "sku": "B"}]}'
    c = '{"id": "r-9", "meta": {"ts": 2, "by": "y"}, "items": [{"id": 7, "sku": "A"}, {"id": 8, "sku": "B"}]}'
    out = run(b, c, JSON_OBJECT, ignore_paths=("id", "meta", "items[*].id"))
    assert out["fields"] == {"items[0].sku": True, "items[1].sku": True}
    out = run(b, c, JSON_OBJECT, key_fields=("items", "id"), ignore_paths=("$.items[*].id", "id"))
    assert out["fields"] == {"items": True}  # whole list compared, ignored sub-paths skipped inside it


def test_whole_list_compares_by_position():
    out = run('{"tags": ["a", "b"]}', '{"tags": ["b", "a"]}', JSON_OBJECT, key_fields=("tags",))
    assert out["fields"] == {"tags": False}
    out = run('{"tags": ["a", "b"]}', '{"tags": ["A", " b "]}', JSON_OBJECT, key_fields=("tags",))
    assert out["fields"] == {"tags": True}
    out = run('{"tags": ["a"]}', '{"tags": ["a", "b"]}', JSON_OBJECT, key_fields=("tags",))
    assert out["fields"] == {"tags": False}


def test_number_tolerance_from_the_spec():
    out = run('{"total": 100.0}', '{"total": 100.00005}', JSON_OBJECT)  # 5e-5 <= 1e-6 * 100
    assert out["fields"] == {"total": True}
    out = run('{"total": 100.0}', '{"total": 100.0005}', JSON_OBJECT)  # 5e-4 > 1e-6 * 100
    assert out["fields"] == {"total": False}
    out = run('{"total": 100.0}', '{"total": 100.0005}', JSON_OBJECT, number_tolerance=1e-5)
    assert out["fields"] == {"total": True}
    out = run('{"total": 100}', '{"total": 100.0005}', JSON_OBJECT, number_tolerance=0)
    assert out["fields"] == {"total": False}


def test_scalar_documents_compare_at_the_root():
    out = run("12", "12.0", JSON_OBJECT)
    assert out["fields"] == {"$": True}


# --- paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,segments",
    [
        ("customer.name", ("customer", "name")),
        ("$.items[0].sku", ("items", 0, "sku")),
        ("items[*].sku", ("items", ANY, "sku")),
        ("meta.*", ("meta", ANY)),
        ('$["a.b"][2]', ("a.b", 2)),
        ("[0]", (0,)),
        ("$", ()),
    ],
)
def test_parse_path(path, segments):
    assert parse_path(path) == segments


@pytest.mark.parametrize("path", ["", "a..b", "a[x]", "a[-1]", "a]", "$."])
def test_parse_path_rejects(path):
    with pytest.raises(ValueError):
        parse_path(path)


def test_render_path_round_trips():
    for segments in [("customer", "name"), ("items", 0, "sku"), ("a.b", "c[d]"), (0, "x"), ()]:
        assert parse_path(render_path(segments)) == segments
    assert render_path(("a.b", 1)) == '["a.b"][1]'


# --- type-aware equality ------------------------------------------------------------------


@pytest.mark.parametrize(
    "a,b,equal",
    [
        (1, 1.0, True),
        (0.1 + 0.2, 0.3, True),
        (1000000, 1000000.5, True),  # relative: 0.5 <= 1e-6 * 1e6
        (1.0, 1.01, False),
        (0, 1e-7, True),  # absolute near zero
        ("12.50", 12.5, True),  # numeric string vs number
        (12.5, " 12.5 ", True),
        ("02134", "2134", False),  # two strings stay strings
        ("1e3", 1000, True),
        ("12 apples", 12, False),
        ("nan", float("nan"), False),
        (True, 1, False),  # bool is not a number
        (True, True, True),
        (True, "true", False),
        (None, None, True),
        (None, 0, False),
        (None, "", False),
        ("", None, False),
        ("Ann  LEE", "ann lee", True),
        ("café", "cafe\u0301", True),  # NFKC composes
        ("ﬁle", "file", True),  # NFKC ligature
        ("yes", "no", False),
        ({"a": 1}, {"a": 1.0}, True),
        ({"a": 1}, {"a": 1, "b": None}, False),
        ([1, 2], [2, 1], False),
        ([1, 2], "1, 2", False),
    ],
)
def test_field_equal(a, b, equal):
    assert field_equal(a, b, 1e-6) is equal
    assert field_equal(b, a, 1e-6) is equal


@pytest.mark.parametrize(
    "a,b,equal",
    [
        ("2026-01-05", "2026-01-05T00:00:00Z", True),
        ("2026-01-05", "2026-01-05T18:30:00-05:00", True),  # the calendar day as written
        ("2026-01-05", "2026-01-06T00:00:00Z", False),
        ("2026-01-05T10:00:00Z", "2026-01-05T11:00:00+01:00", True),  # the same instant
        ("2026-01-05T10:00:00Z", "2026-01-05T10:00:00", True),  # naive taken as UTC
        ("2026-01-05T10:00:00Z", "2026-01-05T10:00:01Z", False),
        ("2026-01-05T10:00:00.500Z", "2026-01-05 10:00:00.5+00:00", True),
        ("2026-01-05", "2026-1-5", False),  # not ISO: compared as strings
        ("2026-01-05", "January 5, 2026", False),
        ("2026-02-30", "2026-03-02", False),  # not a date at all
    ],
)
def test_dates(a, b, equal):
    assert field_equal(a, b, 1e-6) is equal
    assert field_equal(b, a, 1e-6) is equal


def test_parse_iso_refuses_numbers_and_bad_dates():
    assert parse_iso("20260105") is None
    assert parse_iso("2026-13-01") is None
    assert parse_iso("2026-01-05T25:00") is None
    assert parse_iso("2026-01-05").isoformat() == "2026-01-05"
