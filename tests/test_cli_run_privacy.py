"""``replay run`` with ``redact:``, end to end against the mock server on 127.0.0.1 answering with
what it was sent: no original value reaches the store's bytes (its WAL and shared memory too),
the exports or the reports; placeholders line up across arms and survive a resume; ``before_send``
keeps the values from the arms; the store and its folder are private."""

import json
import os
import sqlite3
import stat

import pytest
from click.testing import CliRunner

from conftest import NO_GATES, write_log
from replay.cli import cli
from replay.mockserver import last_user_text

EMAIL, CARD, PHONE, IBAN, IP = "jane.doe@example.com", "4111 1111 1111 1111", "+44 20 7946 0958", \
    "DE89 3704 0044 0532 0130 00", "203.0.113.77"  # fmt: skip
KEY = "sk-proj-" + "Q9w8E7r6T5y4U3i2O1p0" * 2
ORIGINALS = [EMAIL, CARD, CARD.replace(" ", ""), PHONE, IBAN, IBAN.replace(" ", ""), IP, KEY, "7946 0958", "0532 0130"]
"""What no file may hold (and pieces of it, in case a value is only half replaced)."""


def echo(body):
    """The arm repeats the customer's message: an endpoint echoing the PII it was sent."""
    return f"Noted: {last_user_text(body)}"


def pii_record(i):
    text = f"I am {EMAIL}, card {CARD}, IBAN {IBAN}, call {PHONE} from {IP} (key {KEY}); order {1000 + i}"
    return {
        "id": f"r{i}",
        "request": {"model": "gpt-4o", "user": EMAIL, "max_tokens": 50,
                    "messages": [{"role": "system", "content": "Help the customer."}, {"role": "user", "content": text}]},
        "response": {"model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": f"Thanks, we will write to {EMAIL} and call {PHONE}."}}]},
        "metadata": {"category": "billing", "customer": EMAIL},
    }  # fmt: skip


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def scenario(tmp_path, server, redact="true", **extra):
    log = write_log(tmp_path / "log.jsonl", [pii_record(i) for i in range(6)])
    lines = [f"name: private\nlogs: {log}", f"candidate: {{base_url: '{server.base_url}', model: cand-1}}",
             f"redact: {redact}", *[f"{key}: {value}" for key, value in extra.items()]]  # fmt: skip
    path = tmp_path / "scenario.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(tmp_path, store_path, scenario_path):
    reports = {"--report-md": tmp_path / "r.md", "--report-json": tmp_path / "r.json", "--report-junit": tmp_path / "r.xml"}
    args = [item for pair in reports.items() for item in pair]
    result = invoke("run", scenario_path, "--store", store_path, "--quiet", "--gates", NO_GATES, *args)
    assert result.exit_code == 0, result.output
    return result, list(reports.values())


def stored_files(store_path):
    return [store_path, f"{store_path}-wal", f"{store_path}-shm"]


def leaks(paths, texts=ORIGINALS):
    """(file, original) for each original value found in a file's raw bytes."""
    found = []
    for path in paths:
        data = open(path, "rb").read()
        found += [(os.path.basename(str(path)), text) for text in texts if text.encode() in data]
    return found


def candidate_texts(store_path):
    db = sqlite3.connect(store_path)
    return dict(db.execute("SELECT request_id, text FROM results WHERE arm = 'candidate' ORDER BY request_id").fetchall())


def test_no_original_value_reaches_the_store_its_wal_the_exports_or_the_reports(make_server, tmp_path, store_path):
    server = make_server(latency_ms=5, respond=echo)
    result, reports = run(tmp_path, store_path, scenario(tmp_path, server))
    assert all(os.path.getsize(path) for path in stored_files(store_path))  # the WAL still holds the run's pages
    exports = []
    for fmt in ("jsonl", "csv"):
        exports.append(tmp_path / f"export.{fmt}")
        assert invoke("export", "latest", "--format", fmt, "-o", exports[-1], "--store", store_path).exit_code == 0
    shown = invoke("show", "latest", "r3", "--store", store_path)
    assert shown.exit_code == 0 and "<EMAIL_1>" in shown.output
    for text in ORIGINALS:
        assert text not in result.output and text not in shown.output
    assert leaks(stored_files(store_path) + reports + exports) == []
    assert server.stats.bodies[0]["user"] == EMAIL  # before_send: false, the arm got the original request
    # (an answer's key-shaped strings are scrubbed as [REDACTED] by replay.secrets before redaction sees them)
    assert "Noted: I am <EMAIL_1>, card <CARD_1>, IBAN <IBAN_1>, call <PHONE_1> from <IP_1> (key [REDACTED])" in \
        open(exports[0], encoding="utf-8").read()  # fmt: skip


def test_placeholders_line_up_across_the_request_the_logged_answer_and_the_arm(make_server, tmp_path, store_path):
    server = make_server(latency_ms=5, respond=echo)
    run(tmp_path, store_path, scenario(tmp_path, server))
    db = sqlite3.connect(store_path)
    request, metadata = db.execute("SELECT request_json, metadata_json FROM cases WHERE request_id = 'r2'").fetchone()
    assert json.loads(request)["messages"][1]["content"] == \
        "I am <EMAIL_1>, card <CARD_1>, IBAN <IBAN_1>, call <PHONE_1> from <IP_1> (key <API_KEY_1>); order 1002"
    assert json.loads(request)["user"] == "<EMAIL_1>" and json.loads(metadata) == {"category": "billing", "customer": "<EMAIL_1>"}
    logged = db.execute("SELECT text FROM results WHERE request_id = 'r2' AND arm = 'logged'").fetchone()[0]
    assert logged == "Thanks, we will write to <EMAIL_1> and call <PHONE_1>."
    assert candidate_texts(store_path)["r2"] == (
        "Noted: I am <EMAIL_1>, card <CARD_1>, IBAN <IBAN_1>, call <PHONE_1> from <IP_1> (key [REDACTED]); order 1002")


def test_a_resume_numbers_the_placeholders_the_same_way(make_server, tmp_path, store_path):
    server = make_server(latency_ms=5, respond=echo)
    run(tmp_path, store_path, scenario(tmp_path, server))
    before = candidate_texts(store_path)
    db = sqlite3.connect(store_path)
    db.execute("DELETE FROM results WHERE arm = 'candidate' AND request_id IN ('r1', 'r4')")
    db.execute("UPDATE runs SET status = 'interrupted'")
    db.commit()
    result = invoke("run", "--resume", "latest", "--store", store_path, "--quiet", "--gates", NO_GATES)
    assert result.exit_code == 0, result.output  # the log's records, redacted, match the stored cases
    assert candidate_texts(store_path) == before
    assert leaks(stored_files(store_path)) == []


def test_before_send_keeps_the_values_from_the_arms_and_the_reports_say_so(make_server, tmp_path, store_path):
    server = make_server(latency_ms=5, respond=echo)
    result, (md, report_json, junit) = run(tmp_path, store_path, scenario(tmp_path, server, "{before_send: true}"))
    sent = json.dumps(server.stats.bodies)
    assert server.stats.bodies and [text for text in ORIGINALS if text in sent] == []
    assert server.stats.bodies[0]["user"] == "<EMAIL_1>"
    assert "Privacy" in result.output and "the arms got redacted requests; comparisons ran on redacted text" in \
        " ".join(result.output.split())  # fmt: skip
    assert "**Privacy:** email, phone, card, iban, api_key, token, ip redacted before sending and storing" in md.read_text()
    assert json.loads(report_json.read_text())["redaction"] == {
        "rules": ["email", "phone", "card", "iban", "api_key", "token", "ip"], "patterns": [], "before_send": True,
        "compared_on": "redacted text"}  # fmt: skip
    assert '<property name="redaction" value="email, phone, card' in junit.read_text()
    assert leaks(stored_files(store_path) + [md, report_json, junit]) == []


def test_without_redaction_the_values_are_stored_as_they_came(make_server, tmp_path, store_path):
    """The same run without the key: proves the leak test above can see a leak."""
    server = make_server(latency_ms=5, respond=echo)
    log = write_log(tmp_path / "log.jsonl", [pii_record(i) for i in range(3)])
    result = invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "c", "--store",
                    store_path, "--quiet", "--gates", NO_GATES)  # fmt: skip
    assert result.exit_code == 0 and "Privacy" not in result.output
    assert {text for _, text in leaks(stored_files(store_path))} >= {EMAIL, CARD, PHONE, IP}


def test_the_redact_flag_turns_every_builtin_on_for_an_adhoc_run(make_server, tmp_path, store_path):
    server = make_server(latency_ms=5, respond=echo)
    log = write_log(tmp_path / "log.jsonl", [pii_record(i) for i in range(3)])
    result = invoke("run", "--logs", log, "--candidate-url", server.base_url, "--candidate-model", "c", "--store",
                    store_path, "--quiet", "--gates", NO_GATES, "--redact")  # fmt: skip
    assert result.exit_code == 0 and "Privacy" in result.output
    assert leaks(stored_files(store_path)) == []


def test_custom_patterns_and_a_chosen_rule_set(make_server, tmp_path, store_path):
    server = make_server(latency_ms=5, respond=echo)
    path = scenario(tmp_path, server, "{rules: [email], patterns: {order: 'order \\d+'}}")
    run(tmp_path, store_path, path)
    text = candidate_texts(store_path)["r2"]
    assert text == f"Noted: I am <EMAIL_1>, card {CARD}, IBAN {IBAN}, call {PHONE} from {IP} (key [REDACTED]); <ORDER_1>"


@pytest.mark.parametrize("redact, line", [
    ("{rules: [email, card, emial]}", "redact.rules[2]: unknown rule 'emial' (did you mean 'email'?); the rules are"
                                      " email, phone, card, iban, api_key, token, ip"),
    ("{patterns: {name: '[a-'}}", "redact.patterns.name: not a valid regular expression"),
])  # fmt: skip
def test_a_bad_redact_key_is_one_line_and_exit_2(make_server, tmp_path, store_path, redact, line):
    server = make_server(latency_ms=5)
    path = scenario(tmp_path, server, redact)
    result = CliRunner().invoke(cli, ["run", str(path), "--store", store_path, "--quiet"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}: {line}") and result.stderr.count("\n") == 1
    assert server.stats.requests == 0
    assert not os.path.exists(store_path) or sqlite3.connect(store_path).execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)


def test_the_store_is_private_to_its_owner(make_server, tmp_path):
    server = make_server(latency_ms=5, respond=echo)
    store_path = tmp_path / "new" / "deeper" / "replay.db"
    run(tmp_path, str(store_path), scenario(tmp_path, server))
    for path in stored_files(str(store_path)):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert stat.S_IMODE(os.stat(store_path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store_path.parent.parent).st_mode) == 0o700


def test_an_existing_folder_is_left_alone_and_an_existing_store_made_private(make_server, tmp_path):
    server = make_server(latency_ms=5, respond=echo)
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    store_path = folder / "replay.db"
    sqlite3.connect(store_path).close()
    os.chmod(store_path, 0o644)
    run(tmp_path, str(store_path), scenario(tmp_path, server))
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    assert [stat.S_IMODE(os.stat(path).st_mode) for path in stored_files(str(store_path))] == [0o600] * 3


def test_every_arm_the_judge_and_the_embeddings_see_and_store_only_placeholders(make_server, tmp_path, store_path):
    """A fresh baseline, a noise floor, a judge whose reasons quote its prompt, and embeddings: every
    answer and verdict is stored with the record's placeholders, and the judge never sees an original."""
    server = make_server(latency_ms=5, respond=echo)
    production = make_server(latency_ms=5, respond=lambda body: f"Production heard: {last_user_text(body)}")
    judge = make_server(latency_ms=1, respond=lambda body: json.dumps({"winner": "A", "reason": last_user_text(body)[-300:]}))
    arm = f"{{base_url: '{production.base_url}', model: prod-1}}"
    path = scenario(tmp_path, server, baseline="fresh", production=arm, noise_floor="{sample: 3}",
                    judge=f"{{base_url: '{judge.base_url}', model: judge-1}}",
                    embeddings=f"{{base_url: '{server.base_url}', model: mock-embed}}")  # fmt: skip
    result, reports = run(tmp_path, store_path, path)
    db = sqlite3.connect(store_path)
    answers = db.execute("SELECT arm, text FROM results WHERE request_id = 'r2' ORDER BY arm").fetchall()
    echoed = "I am <EMAIL_1>, card <CARD_1>, IBAN <IBAN_1>, call <PHONE_1> from <IP_1> (key [REDACTED]); order 1002"
    texts = dict(answers)
    assert texts["candidate"] == f"Noted: {echoed}" and texts["production"] == f"Production heard: {echoed}"
    noise = db.execute("SELECT text FROM results WHERE arm = 'noise'").fetchall()
    assert len(noise) == 3 and all(text.startswith("Production heard: I am <EMAIL_1>, card <CARD_1>") for (text,) in noise)
    reasons = [reason for (reason,) in db.execute("SELECT reason FROM judge_verdicts")]
    assert reasons and all("<EMAIL_1>" in reason for reason in reasons)
    assert db.execute("SELECT COUNT(*) FROM pair_similarities WHERE cosine IS NOT NULL").fetchone()[0] >= 6
    assert [text for text in ORIGINALS if text in json.dumps(judge.stats.bodies)] == []
    assert leaks(stored_files(store_path) + reports) == []


def test_a_malformed_record_is_named_without_quoting_its_personal_data(make_server, tmp_path, store_path):
    server = make_server(latency_ms=5)
    log = write_log(tmp_path / "log.jsonl", [{**pii_record(0), "timestamp": EMAIL}])
    path = tmp_path / "s.yaml"
    path.write_text(f"logs: {log}\ncandidate: {{base_url: '{server.base_url}', model: c}}\nredact: true\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(path), "--store", store_path, "--quiet"])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {log}:1: 'timestamp' must be an ISO 8601 string, got '<EMAIL_1>'\n"


def test_a_closed_loop_session_stores_the_candidates_turns_redacted(make_server, tmp_path, store_path):
    """The closed loop sends each turn itself (not through the arm's queue): its answers are redacted
    too, and its sessions are grouped by the log's own session ids (an email here), not by placeholders."""
    server = make_server(latency_ms=5, respond=echo)
    first = {"role": "user", "content": f"I am {EMAIL}"}
    records = []
    for session, other in (("s-a", PHONE), ("s-b", IP)):
        second = [first, {"role": "assistant", "content": f"Noted: I am {EMAIL}"}, {"role": "user", "content": f"reach me at {other}"}]
        for turn, messages in enumerate(([first], second), 1):
            records.append({"id": f"{session}-{turn}", "request": {"model": "gpt-4o", "messages": messages},
                            "response": {"choices": [{"index": 0, "finish_reason": "stop",
                                                      "message": {"role": "assistant", "content": "ok"}}]},
                            "metadata": {"session_id": f"{session}@{EMAIL}"}})  # fmt: skip
    log = write_log(tmp_path / "log.jsonl", records)
    path = tmp_path / "s.yaml"
    path.write_text(f"logs: {log}\ncandidate: {{base_url: '{server.base_url}', model: c}}\nsessions: closed_loop\n"
                    "redact: true\n", encoding="utf-8")  # fmt: skip
    result = invoke("run", path, "--store", store_path, "--quiet", "--gates", NO_GATES)
    assert result.exit_code == 0, result.output
    assert candidate_texts(store_path) == {"s-a-1": "Noted: I am <EMAIL_1>", "s-a-2": "Noted: reach me at <PHONE_1>",
                                           "s-b-1": "Noted: I am <EMAIL_1>", "s-b-2": "Noted: reach me at <IP_1>"}
    assert leaks(stored_files(store_path)) == []
