"""Build stored runs without a server: deterministic pairs for decision and report tests."""

from __future__ import annotations

import json
import random

from replay.scenario_file import build_scenario
from replay.store import Store
from replay.types import Completion, LogRecord, Outcome, Usage

CATEGORIES = ("billing", "shipping", "account")


def scenario_snapshot(**decision_keys):
    data = {"name": "golden", "logs": "fixtures/logs/support.jsonl", "sample": {"rate": 1.0, "seed": 7},
            "candidate": {"base_url": "http://127.0.0.1:9/v1", "model": "cand-mini"}, **decision_keys}  # fmt: skip
    return build_scenario(data, source="golden.yaml").snapshot()


def outcome(request_id, arm, text, latency, ttft=None, tokens=(20, 10), cost=0.001, finish="stop", tool_calls=(),
            error=None):  # fmt: skip
    if error:
        return Outcome(request_id, arm, "error", None, (), {}, 500, error, "scripted failure")
    completion = Completion(text=text, tool_calls=tuple(tool_calls), finish_reason=finish,
                            usage=Usage(*tokens), latency_ms=latency, ttft_ms=ttft or latency / 3)  # fmt: skip
    return Outcome(request_id, arm, "ok", completion, (), {"temperature": 0}, 200, cost_usd=cost)


def golden_run(store_path, run_id="golden-run", n=120, **decision_keys):
    """A run where the candidate breaks JSON on some extraction requests and errs once."""
    decision_keys.setdefault("segment_by", "category")
    decision_keys.setdefault("critical_segments", ["billing"])
    store = Store(str(store_path))
    store.create_run(run_id, "golden", scenario_snapshot(**decision_keys), "h")
    store.db.execute("UPDATE runs SET started_at = 1764000000, ended_at = 1764000060, status = 'completed',"
                     " planned = ? WHERE id = ?", (n, run_id))  # fmt: skip
    rng = random.Random(3)
    cases, outcomes = [], []
    for i in range(n):
        rid = f"req-{i:03d}"
        category = CATEGORIES[i % 3]
        extract = i % 4 == 0
        request = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"Question {i} about {category}"}]}
        if extract:
            request["response_format"] = {"type": "json_object"}
            base_text = json.dumps({"category": category, "order_id": str(1000 + i), "urgent": i % 8 == 0})
            cand_text = f"```json\n{base_text}\n```" if i % 12 == 0 else base_text
        else:
            base_text = f"Your order {1000 + i} ships within {2 + i % 3} days."
            cand_text = base_text if i % 5 else f"Thanks! Your order {1000 + i} should ship in {2 + i % 3} days."
        cases.append((i, LogRecord(rid, request, metadata={"category": category})))
        base_latency = 600 + rng.randint(0, 300)
        outcomes.append(outcome(rid, "logged", base_text, base_latency, cost=0.002))
        if i == 7:
            outcomes.append(outcome(rid, "candidate", None, None, error="http_error"))
        else:
            outcomes.append(outcome(rid, "candidate", cand_text, base_latency - 200 + rng.randint(0, 100), cost=0.0004))
    store.add_cases(run_id, cases)
    store.add_outcomes(run_id, outcomes)
    return store


HOSTILE_ID = "[bold red]inj[/bold red]"
ESC_ID = "id-\x1b[31mred\x1b[0m|<b>`x`</b>"
HOSTILE_SEGMENT = "[blink]bill\x1b]0;pwned\x07|<i>ing</i>\n*x*"
CLEAR = "\x1b[2J"
OSC_TITLE = "\x1b]0;pwned\x07"


def hostile_run(store_path, run_id="hostile-run"):
    """A run whose logged text and endpoint answers try to inject markup, escapes and Markdown.

    The run name, the candidate model, ids, a segment value, answers, an error message and a
    finish reason all carry rich markup, ESC/OSC/C1 sequences, a bidi override, ``|``, ``<``
    and a line break; renderers must show them as inert text."""
    snapshot = scenario_snapshot(segment_by="category", critical_segments=[], gates=[
        {"metric": "error_rate", "max_delta": 0.5, "segment": f"category={HOSTILE_SEGMENT}"}])
    snapshot["name"] = "[bold]nm\x1b[5m"
    snapshot["candidate"]["model"] = "[red]cand\x9b31m\u202emodel"
    store = Store(str(store_path))
    store.create_run(run_id, snapshot["name"], snapshot, "h")
    store.db.execute("UPDATE runs SET started_at = 1764000000, ended_at = 1764000060, status = 'completed',"
                     " planned = 3 WHERE id = ?", (run_id,))  # fmt: skip
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"say {CLEAR}[bold]hi[/bold]{OSC_TITLE}"}]}
    cases = [(0, LogRecord(HOSTILE_ID, request, metadata={"category": HOSTILE_SEGMENT})),
             (1, LogRecord(ESC_ID, request, metadata={"category": HOSTILE_SEGMENT})),
             (2, LogRecord("plain", request, metadata={"category": "plain"}))]  # fmt: skip
    error = Outcome(ESC_ID, "candidate", "error", None, (), {}, 500, "http_error",
                    f"upstream said [bold]no[/bold]{CLEAR}\x00|<br>\nline two")  # fmt: skip
    outcomes = [
        outcome(HOSTILE_ID, "logged", f"fine {OSC_TITLE}answer", 500),
        outcome(HOSTILE_ID, "candidate", f"other {CLEAR}[link=http://x]answer[/link]\x9b2J", 400,
                finish="stop\x1b[1m"),
        outcome(ESC_ID, "logged", "base [i]answer[/i]", 500),
        error,
        outcome("plain", "logged", "same", 500),
        outcome("plain", "candidate", "same", 400),
    ]
    store.add_cases(run_id, cases)
    store.add_outcomes(run_id, outcomes)
    return store


JUDGE = {"base_url": "http://127.0.0.1:9/v1", "model": "gpt-4o"}
"""The judged golden run's judge: of the candidate's family (cand-mini is not; gpt-4o-mini would be)."""


def judged_golden_run(store_path, run_id="judged-run", n=120):
    """The golden run with a judge: verdicts stored as the judge stage stores them (no server).

    Of the pairs whose answers differ, the judge prefers the candidate in both orders on two in
    four, flips with the order on one (a tie) and fails on req-005 (a judge error); identical
    answers are ties without a call. Reviewers agree with it on most pairs they saw."""
    store = golden_run(store_path, run_id, n, judge=JUDGE)
    store.db.execute("UPDATE runs SET name = 'judged' WHERE id = ?", (run_id,))
    verdicts, rows, reviews = [], [], []
    for i in range(n):
        rid = f"req-{i:03d}"
        results = store.result_rows(run_id, rid)
        base, cand = results["logged"], results["candidate"]
        if base["status"] != "ok" or cand["status"] != "ok":
            continue
        if base["text"] == cand["text"]:
            rows.append((rid, 0, True, None, None, 0, None))
            continue
        first = i % 2 == 0
        for turn, candidate_is_a in enumerate((first, not first)):
            key = f"k-{rid}-{turn}"
            if rid == "req-005":
                rows.append((rid, turn, candidate_is_a, key, "invalid_verdict: not JSON", 2, 0.0002))
                continue
            kind = i % 4
            winner = {0: "A" if candidate_is_a else "B", 1: "A" if candidate_is_a else "B", 2: "A",
                      3: "B" if candidate_is_a else "A"}[kind]  # fmt: skip
            reason = f"answer {winner} is [b]clearer[/b] for {rid}" if kind != 3 else "the baseline's answer is complete"
            verdicts.append((key, winner, reason, 1, 0.0001, "gpt-4o"))
            rows.append((rid, turn, candidate_is_a, key, None, 1, 0.0001))
        if i % 10 == 0:
            reviews.append((run_id, f"i{i:03d}", rid, "ann", "candidate" if i % 4 < 2 else "tie", None))
    store.add_judgements(run_id, verdicts, rows)
    store.add_reviews(reviews)
    return store


SAMPLED = {"rate": 1.0, "seed": 7, "max": 120, "since": "2026-11-04T00:00:00Z", "stratify_by": ["category"],
           "min_per_stratum": 5}  # fmt: skip
"""The sampled golden run's ``sample``: a time window and strata (the mix report's golden files)."""


def sampled_log(n=360):
    """The golden run's requests as log records, one an hour from 2026-11-01 (every 50th without a timestamp)."""
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    return [LogRecord(f"req-{i:03d}", {"model": "gpt-4o", "messages": [{"role": "user", "content": f"Question {i}"}]},
                      timestamp=None if i % 50 == 49 else (start + timedelta(hours=i)).isoformat().replace("+00:00", "Z"),
                      metadata={"category": CATEGORIES[i % 3]})
            for i in range(n)]  # fmt: skip


def sampled_golden_run(store_path, run_id="sampled-run", sample=None, **decision_keys):
    """The golden run's pairs, sampled from a 360-record log as ``replay run`` samples it (the
    :class:`~replay.sampling.Selector`), with the traffic mix the run's first pass stores."""
    from replay.sampling import SampleSpec, Selector

    sample = dict(SAMPLED if sample is None else sample)
    store = golden_run(store_path, run_id, 360, sample=sample, **decision_keys)
    spec = SampleSpec.from_snapshot(build_scenario({**_BASE, "sample": sample}, source="golden.yaml").snapshot()["sample"])
    selector = Selector(spec, mix_keys=("category",))
    for record in sampled_log():
        selector.offer(record)
    chosen = selector.result()
    store.forget(run_id, [f"req-{i:03d}" for i in range(360) if f"req-{i:03d}" not in chosen.ids])
    store.db.execute("UPDATE runs SET planned = ? WHERE id = ?", (len(chosen.ids), run_id))
    if chosen.weights:
        store.db.executemany("UPDATE cases SET weight = ? WHERE run_id = ? AND request_id = ?",
                             [(weight, run_id, rid) for rid, weight in chosen.weights.items()])  # fmt: skip
    store.set_mix(run_id, chosen.mix)
    return store


_BASE = {"name": "golden", "logs": "fixtures/logs/support.jsonl", "candidate": {"base_url": "http://127.0.0.1:9/v1", "model": "cand-mini"}}
