"""Blinded human review: export a stratified sample of pairs, import the verdicts.

Each exported item shows the prompt and two answers as A and B, the order drawn per
pair from a seeded generator, so reviewers cannot tell which model wrote which. The
key (which side is the candidate) never leaves the store: import looks it up by the
item's opaque id.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass
from typing import Any

from replay.errors import InputError
from replay.evaluate import baseline_arm, compare_run, settings_for
from replay.store import Store
from replay.types import ARM_CANDIDATE

CSV_FIELDS = ("item_id", "segment", "prompt", "answer_a", "answer_b", "verdict", "comment")
VERDICTS = {"a": "A", "b": "B", "tie": "tie", "equal": "tie", "same": "tie", "both": "tie", "neither": "tie"}


@dataclass(frozen=True)
class ExportSummary:
    run_id: str
    items: int
    per_segment: dict[str, int]
    paths: tuple[str, ...]
    identical: int = 0
    """Pairs left out because both answers match after normalising (ties by definition)."""


def stratified_sample(groups: dict[str, list[str]], n: int, rng: random.Random) -> list[str]:
    """About ``n`` ids, each group represented in proportion to its size (at least one each)."""
    total = sum(len(ids) for ids in groups.values())
    if total <= n:
        return [i for ids in groups.values() for i in ids]
    chosen: list[str] = []
    quotas = {key: max(1, round(n * len(ids) / total)) for key, ids in groups.items()}
    while sum(quotas.values()) > n:  # rounding up small groups can overshoot
        largest = max(quotas, key=lambda k: quotas[k])
        quotas[largest] -= 1
    for key, ids in sorted(groups.items()):
        chosen += rng.sample(sorted(ids), min(quotas[key], len(ids)))
    return chosen


def export_review(store: Store, run_ref: str, n: int, out_prefix: str, seed: int = 0,
                  include_identical: bool = False) -> ExportSummary:  # fmt: skip
    run = store.get_run(run_ref)
    settings = settings_for(run)
    rows = compare_run(store, run, settings)
    key = settings.segments.by[0] if settings.segments.by else None
    groups: dict[str, list[str]] = {}
    identical = 0
    for row in rows:
        if row.get("b_error") or row.get("c_error"):
            continue  # errors need no human to judge
        if row.get("normalized_match") and not include_identical:
            identical += 1  # the same answer twice: a reviewer could only say tie
            continue
        label = str((row.get("metadata") or {}).get(key)) if key else "all"
        groups.setdefault(label, []).append(row["request_id"])
    rng = random.Random(f"{run.id}:{seed}")
    chosen = stratified_sample(groups, n, rng)
    rng.shuffle(chosen)
    segment_of = {rid: label for label, ids in groups.items() for rid in ids}
    base_arm = baseline_arm(run)
    items, keys = [], []
    for request_id in chosen:
        case = store.case(run.id, request_id)
        answers = store.result_rows(run.id, request_id)
        digest = hashlib.blake2b(f"{run.id}:{request_id}:{seed}".encode(), digest_size=6).digest()
        item_id = "i" + digest[:5].hex()
        candidate_is = "AB"[digest[5] % 2]  # fixed per item: a second export never changes a key already sent
        cand, base = _answer(answers[ARM_CANDIDATE]), _answer(answers[base_arm])
        items.append({
            "item_id": item_id, "segment": segment_of[request_id] if key else "",
            "prompt": _prompt(case[0] if case else {}),
            "answer_a": cand if candidate_is == "A" else base, "answer_b": base if candidate_is == "A" else cand,
            "verdict": "", "comment": "",
        })  # fmt: skip
        keys.append((item_id, request_id, candidate_is))
    paths = (f"{out_prefix}.csv", f"{out_prefix}.jsonl")
    try:
        with open(paths[0], "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(items)
        with open(paths[1], "w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise InputError(f"{exc.filename or out_prefix}: cannot write the review file ({exc.strerror or exc})") from None
    store.add_review_items(run.id, keys)
    per_segment: dict[str, int] = {}
    for item in items:
        per_segment[item["segment"] or "all"] = per_segment.get(item["segment"] or "all", 0) + 1
    return ExportSummary(run.id, len(items), per_segment, paths, identical)


def _prompt(request: dict[str, Any]) -> str:
    lines = []
    for message in request.get("messages") or []:
        content = message.get("content")
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False)
        lines.append(f"{message.get('role', '?')}: {content}")
    return "\n".join(lines)


def _answer(row: dict[str, Any]) -> str:
    text = row.get("text") or ""
    for call in json.loads(row.get("tool_calls_json") or "[]"):
        text += f"\n[tool call] {call['name']}({call['arguments']})"
    return text


@dataclass(frozen=True)
class ImportSummary:
    runs: tuple[str, ...]
    recorded: int
    blank: int


def import_reviews(store: Store, path: str, reviewer: str = "reviewer") -> ImportSummary:
    """Record verdicts from a filled-in CSV or JSONL export; bad lines name FILE:LINE."""
    records = list(_read(path))
    rows, blank, runs = [], 0, set()
    for line, record in records:
        item_id = str(record.get("item_id") or "").strip()
        verdict_raw = str(record.get("verdict") or "").strip().lower()
        if not item_id:
            raise InputError(f"{path}:{line}: item_id: missing")
        if not verdict_raw:
            blank += 1
            continue
        verdict = VERDICTS.get(verdict_raw)
        if verdict is None:
            raise InputError(f"{path}:{line}: verdict: expected A, B or tie, got {record.get('verdict')!r}")
        key = store.review_key(item_id)
        if key is None:
            raise InputError(f"{path}:{line}: item_id: {item_id!r} was not exported from this store ({store.path})")
        run_id, request_id, candidate_is = key
        outcome = "tie" if verdict == "tie" else "candidate" if verdict == candidate_is else "baseline"
        who = str(record.get("reviewer") or reviewer)
        rows.append((run_id, item_id, request_id, who, outcome, record.get("comment") or None))
        runs.add(run_id)
    store.add_reviews(rows)
    return ImportSummary(tuple(sorted(runs)), len(rows), blank)


def _read(path: str) -> Any:
    text = _decode(path)
    if path.endswith(".jsonl"):
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise InputError(f"{path}:{number}: invalid JSON: {exc}") from None
                if not isinstance(record, dict):
                    raise InputError(f"{path}:{number}: expected a JSON object")
                yield number, record
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if reader.fieldnames is None or "item_id" not in reader.fieldnames or "verdict" not in reader.fieldnames:
            raise InputError(f"{path}:1: expected a CSV header with item_id and verdict columns")
        first_line = reader.line_num + 1
        for record in reader:  # name the line a record starts on (a cell may span lines)
            yield first_line, record
            first_line = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num + 1}: not a readable CSV file ({exc})") from None  # the line being read


def _decode(path: str) -> str:
    """UTF-8 (with or without Excel's BOM), else Windows-1252: what Excel's plain "CSV"
    writes on a Western-European Windows. JSON Lines must be UTF-8."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if raw.startswith(b"PK\x03\x04"):
        raise InputError(f"{path}: an Excel workbook or another zip file: save it as CSV (or 'CSV UTF-8')")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = exc
    if not path.endswith(".jsonl"):
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            pass
    line = raw[: problem.start].count(b"\n") + 1
    hint = "" if path.endswith(".jsonl") else " (in Excel: 'CSV UTF-8')"
    raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[problem.start]:02x}); save it as UTF-8{hint}")
