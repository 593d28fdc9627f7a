"""Redaction (:mod:`replay.privacy`): each built-in finds what it must and nothing that only
looks like it (order numbers, timestamps, dates, UUIDs, versions, prices), placeholders are
stable across a request's parts and arms, and the scenario key is checked."""

import pytest

from replay.privacy import RULES, Marks, Redaction, RedactionError, Redactor, luhn, mod97, parse_redaction
from replay.types import Attempt, Completion, LogRecord, Outcome, ToolCall

EVERY = Redactor(Redaction())


def redact(text, rules=RULES, patterns=None):
    return Redactor(Redaction(tuple(rules), dict(patterns or {}))).text(text, Marks())


# --- each built-in, positive and negative --------------------------------------------------

POSITIVE = {
    "email": ["jane.doe@example.com", "J.Doe+tag@mail.example.co.uk", "ops_team@sub-domain.io"],
    "phone": ["+44 20 7946 0958", "+1 (555) 123-4567", "+33612345678", "(555) 123-4567", "555-123-4567",
              "555.123.4567", "020 7946 0958", "06 12 34 56 78", "030 1234567"],
    "card": ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "5500 0000 0000 0004",
             "3782 822463 10005", "6011000990139424", "2223003122003222"],
    "iban": ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606",
             "NL91ABNA0417164300"],
    "api_key": ["sk-proj-" + "a1B2c3D4e5" * 3, "sk-ant-api03-" + "Zz9" * 10, "ghp_" + "A1b2C3d4E5" * 4,
                "AKIA" + "IOSFODNN7EXAMPLE", "AIza" + "SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", "xoxb-1234567890-abcdefghij",
                "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"],
    "ip": ["192.168.1.10", "10.0.0.1", "8.8.8.8", "2001:db8::8a2e:370:7334", "fe80::1ff:fe23:4567:890a",
           "2001:0db8:85a3:0000:0000:8a2e:0370:7334"],
}  # fmt: skip
PLACEHOLDER = {"email": "<EMAIL_1>", "phone": "<PHONE_1>", "card": "<CARD_1>", "iban": "<IBAN_1>",
               "api_key": "<API_KEY_1>", "ip": "<IP_1>"}  # fmt: skip


@pytest.mark.parametrize("rule, value", [(rule, value) for rule, values in POSITIVE.items() for value in values])
def test_each_builtin_replaces_its_values_in_running_text(rule, value):
    assert redact(f"Hi, it is {value}, thanks.") == f"Hi, it is {PLACEHOLDER[rule]}, thanks."
    assert redact(value, rules=[rule]) == PLACEHOLDER[rule]


@pytest.mark.parametrize("rule, value", [(rule, value) for rule, values in POSITIVE.items() for value in values])
def test_a_rule_left_out_redacts_nothing(rule, value):
    others = [other for other in RULES if other != rule]
    assert redact(f"it is {value}.", rules=others) == f"it is {value}."


@pytest.mark.parametrize("text, expected", [
    ("Authorization: Bearer abcDEF123456.xyz789", "Authorization: Bearer <TOKEN_1>"),
    ("bearer 0123456789abcdef", "bearer <TOKEN_1>"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "<TOKEN_1>"),
    ('{"api_key": "abcd1234efgh5678ijkl"}', '{"api_key": "<API_KEY_1>"}'),
    ("password=Zq8!notshown but SECRET: f00ba4f00ba4f00b", "password=Zq8!notshown but SECRET: <API_KEY_1>"),
])  # fmt: skip
def test_bearer_tokens_and_assigned_keys(text, expected):
    assert redact(text) == expected


NEGATIVE = [
    "order 100234556 shipped", "Order #0012345678", "ORD-2024-000123", "order 4532015112830367 (not Luhn)",
    "ticket 1234567812345678", "invoice 7654321098",
    "2024-05-01T12:34:56Z", "2024-05-01 12:34:56", "epoch 1714567890", "in ms 1714567890123", "12:34:56.789",
    "05.01.2024 10:30", "01/05/2024", "2024-05-01",
    "123e4567-e89b-12d3-a456-426614174000", "550E8400-E29B-41D4-A716-446655440000",
    "version 1.2.3", "v2.10.0.1", "10.0.19045.2965", "python 3.11.4", "2.0.1-beta", "1.2.3.256",
    "$1,299.99", "1299.99 EUR", "€ 12.50", "1 299 999 units", "+15% growth", "+20 30 40",
    "DE89 3704 0044 0532 0130 01 (bad check digits)", "XX12345678901234567", "std::vector<int>", "a::b", "::1",
    "00:1A:2B:3C:4D:5E", "user@localhost", "@mention me", "sk-learn-style", "Bearer authentication", "ghp_short",
]  # fmt: skip


@pytest.mark.parametrize("text", NEGATIVE)
def test_no_false_positive_on_look_alikes(text):
    assert redact(text) == text


def test_checksums():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert mod97("DE89370400440532013000") and not mod97("DE89370400440532013001")


def test_a_card_followed_by_other_digits_is_still_found():
    assert redact("card 4111 1111 1111 1111 12 items") == "card <CARD_1> 12 items"


# --- placeholders: typed, stable, deterministic ---------------------------------------------


def test_the_same_value_gets_the_same_placeholder_and_others_the_next_number():
    text = "a@x.io, b@x.io, A@X.io, 4111 1111 1111 1111, 4111111111111111, 10.0.0.1"
    assert redact(text) == "<EMAIL_1>, <EMAIL_2>, <EMAIL_1>, <CARD_1>, <CARD_1>, <IP_1>"


def test_custom_patterns_are_named_by_their_upper_cased_name_and_run_first():
    patterns = {"customer_id": r"CUST-\d{6}", "ticket": r"T\d{4}"}
    assert redact("CUST-123456 wrote T1234 from a@x.io; CUST-123456", patterns=patterns) == \
        "<CUSTOMER_ID_1> wrote <TICKET_1> from <EMAIL_1>; <CUSTOMER_ID_1>"  # fmt: skip


def test_a_later_pattern_never_rewrites_an_earlier_placeholder():
    patterns = {"first": r"alpha", "word": r"[A-Z_]+\d?"}
    assert redact("alpha BETA", rules=[], patterns=patterns) == "<FIRST_1> <WORD_1>"


def record(request_text, answer_text, **extra):
    answer = Completion(answer_text, tool_calls=(ToolCall("c1", "lookup", '{"email": "jane@shop.example"}'),))
    return LogRecord("r1", {"model": "m", "user": "jane@shop.example",
                            "messages": [{"role": "user", "content": request_text}]},
                     read_answer=lambda: answer, metadata={"customer": "+44 20 7946 0958"}, **extra)  # fmt: skip


def test_a_record_is_redacted_everywhere_in_document_order():
    stored, marks = EVERY.record(record("mail bob@x.io or jane@shop.example", "Done, jane@shop.example",
                                        error={"detail": "for 10.0.0.1"}))
    assert stored.request == {"model": "m", "user": "<EMAIL_1>",
                              "messages": [{"role": "user", "content": "mail <EMAIL_2> or <EMAIL_1>"}]}  # fmt: skip
    assert stored.metadata == {"customer": "<PHONE_1>"}
    assert stored.answer.text == "Done, <EMAIL_1>"
    assert stored.answer.tool_calls[0].arguments == '{"email": "<EMAIL_1>"}'
    assert stored.error == {"detail": "for <IP_1>"}
    assert marks.counts == {"EMAIL": 2, "PHONE": 1, "IP": 1}


def test_every_arm_gets_the_records_placeholders_and_invents_its_own_after_them():
    _, marks = EVERY.record(record("mail bob@x.io", "ok"))
    candidate = Outcome("r1", "candidate", "ok", Completion("bob@x.io and new@x.io"), (), {"user": "jane@shop.example"})
    production = Outcome("r1", "production", "ok", Completion("other@x.io, bob@x.io"), (), {})
    assert EVERY.outcome(candidate, marks).completion.text == "<EMAIL_2> and <EMAIL_3>"
    assert EVERY.outcome(candidate, marks).params == {"user": "<EMAIL_1>"}
    assert EVERY.outcome(production, marks).completion.text == "<EMAIL_3>, <EMAIL_2>"
    assert marks.counts == {"EMAIL": 2, "PHONE": 1}  # an answer's own values never renumber the record


def test_the_numbering_depends_on_the_record_alone():
    first = EVERY.record(record("a@x.io then 4111111111111111", "a@x.io"))
    again = EVERY.record(record("a@x.io then 4111111111111111", "a@x.io"))
    assert first[0].request == again[0].request and first[1].seen == again[1].seen


def test_errors_and_attempts_of_an_outcome_are_redacted():
    _, marks = EVERY.record(record("hi", "ok"))
    failed = Outcome("r1", "candidate", "error", None, (Attempt(1, 0.0, 5.0, 400, "http_error", "bad user a@x.io"),),
                     {}, 400, "http_error", "bad user a@x.io")  # fmt: skip
    redacted = EVERY.outcome(failed, marks)
    assert redacted.error_message == "bad user <EMAIL_2>" and redacted.attempts[0].error_message == "bad user <EMAIL_2>"


# --- the scenario key ------------------------------------------------------------------------


def test_true_turns_every_builtin_on_and_a_mapping_chooses():
    assert parse_redaction(True) == Redaction(RULES, {}, False)
    assert parse_redaction(False) is None
    chosen = parse_redaction({"rules": ["card", "email"], "patterns": {"emp": r"E\d+"}, "before_send": True})
    assert chosen == Redaction(("email", "card"), {"emp": r"E\d+"}, True)
    assert parse_redaction({"patterns": {"emp": r"E\d+"}}).rules == RULES


@pytest.mark.parametrize("value, key, message", [
    ({"rules": ["email", "card", "emial"]}, "redact.rules[2]", "unknown rule 'emial' (did you mean 'email'?)"),
    ({"rules": "email"}, "redact.rules", "expected a list of rules"),
    ({"patterns": {"emp": "E[0-9"}}, "redact.patterns.emp", "not a valid regular expression"),
    ({"patterns": {"emp": "x*"}}, "redact.patterns.emp", "matches the empty string"),
    ({"patterns": {"9lives": "x"}}, "redact.patterns.9lives", "a name is a letter"),
    ({"patterns": {"email": "x"}}, "redact.patterns.email", "the built-in rule's placeholder"),
    ({"before_send": "yes"}, "redact.before_send", "expected true or false"),
    ({"rule": ["email"]}, "redact.rule", "unknown key (did you mean 'redact.rules'?)"),
    ({"rules": []}, "redact.rules", "nothing would be redacted"),
    ("all", "redact", "expected true, false or a mapping"),
])  # fmt: skip
def test_a_bad_key_names_itself(value, key, message):
    with pytest.raises(RedactionError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")) as caught:
        parse_redaction(value)
    assert caught.value.key == key


def test_an_input_errors_message_is_redacted_and_keeps_its_class_and_location():
    from replay.errors import InputError, LogFormatError, ScenarioError
    from replay.types import Location

    located = EVERY.error(LogFormatError(Location("log.jsonl", 3), "got 'a@x.io'"))
    assert isinstance(located, LogFormatError) and str(located) == "log.jsonl:3: got '<EMAIL_1>'" and located.line == 3
    plain = EVERY.error(ScenarioError("bad 10.0.0.1"))
    assert type(plain) is ScenarioError and str(plain) == "bad <IP_1>"
    untouched = InputError("nothing here")
    assert EVERY.error(untouched) is untouched


def test_long_strings_found_clean_are_remembered_and_those_with_data_never():
    redactor = Redactor(Redaction())
    prompt = "You are the support assistant of a shop; answer politely in two sentences. " * 3
    personal = "Please write to jane@shop.example about order 1234, the parcel has not arrived at all."
    for _ in range(3):  # the same strings in every record, as a system prompt is
        stored, _ = redactor.record(record(personal, "ok"))
        assert stored.request["messages"][0]["content"] == personal.replace("jane@shop.example", "<EMAIL_1>")
        assert redactor.strings([prompt, personal], Marks()) == [prompt, personal.replace("jane@shop.example", "<EMAIL_1>")]
