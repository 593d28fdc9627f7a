"""``replay show``: one request and its two answers side by side, differences marked.

Differences are marked by word: struck through on the baseline side, underlined on
the candidate side, and also bracketed ``[-removed-]`` / ``{+added+}`` so that they
stay visible without colour (NO_COLOR, CI logs, copy and paste).
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from replay.reports.escape import clip, term, visible
from replay.types import ARM_CANDIDATE

MAX_MESSAGE_CHARS = 600
MAX_ERROR_CHARS = 2_000


def diff_texts(old: str, new: str) -> tuple[Any, Any]:
    """Two rich Texts with word-level differences marked."""
    from rich.text import Text

    a, b = re.findall(r"\S+|\s+", old), re.findall(r"\S+|\s+", new)
    left, right = Text(), Text()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append("".join(a[i1:i2]))
            right.append("".join(b[j1:j2]))
            continue
        if i2 > i1:
            left.append("[-" + "".join(a[i1:i2]) + "-]", style="red strike")
        if j2 > j1:
            right.append("{+" + "".join(b[j1:j2]) + "+}", style="green underline")
    return left, right


def _answer(row: dict[str, Any] | None) -> str:
    if row is None:
        return "(no answer stored)"
    if row["status"] != "ok":
        return visible(f"ERROR {row.get('error_class')}: " + clip(row.get("error_message") or "", MAX_ERROR_CHARS))
    text = row.get("text") or ""
    if row.get("refusal"):
        text += f"\n(refusal: {row['refusal']})"
    for call in json.loads(row.get("tool_calls_json") or "[]"):
        text += f"\ntool call {call['name']}({call['arguments']})"
    return visible(text, multiline=True)


def _facts(row: dict[str, Any] | None) -> str:
    if row is None or row["status"] != "ok":
        return "—"
    parts = [f"finish {visible(row.get('finish_reason'))}"]
    if row.get("latency_ms") is not None:
        parts.append(f"{row['latency_ms']:,.0f} ms")
    if row.get("ttft_ms") is not None:
        parts.append(f"TTFT {row['ttft_ms']:,.0f} ms")
    if row.get("completion_tokens") is not None:
        parts.append(f"{row.get('prompt_tokens')}→{row['completion_tokens']} tokens")
    if row.get("cost_usd") is not None:
        parts.append(f"${row['cost_usd']:.5f}")
    return ", ".join(parts)


def render_pair(run: Any, request: dict[str, Any], metadata: dict[str, Any], rows: dict[str, dict[str, Any]],
                measures: dict[str, Any] | None) -> list[Any]:  # fmt: skip
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from replay.evaluate import baseline_arm

    base_arm = baseline_arm(run)
    out: list[Any] = []
    request_id = measures["request_id"] if measures else next(iter(rows.values()), {}).get("request_id", "?")
    title = term(request_id, style="bold")
    if metadata:
        title.append("  " + visible(", ".join(f"{k}={v}" for k, v in metadata.items())))
    out.append(title)
    for message in request.get("messages") or []:
        content = message.get("content")
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False)
        if len(content) > MAX_MESSAGE_CHARS:
            content = content[:MAX_MESSAGE_CHARS] + " …"
        role = term(f"{message.get('role', '?')}: ", style="bold")
        out.append(role.append(visible(content, multiline=True)))
    if request.get("response_format"):
        out.append(Text(f"response_format: {json.dumps(request['response_format'])[:200]}"))
    base_row, cand_row = rows.get(base_arm), rows.get(ARM_CANDIDATE)
    left_text, right_text = _answer(base_row), _answer(cand_row)
    left, right = diff_texts(left_text, right_text)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    cand_model = (run.scenario.get("candidate") or {}).get("model", "")
    table.add_column(term(f"Baseline ({base_arm})"), ratio=1)
    table.add_column(term(f"Candidate ({cand_model})"), ratio=1)
    table.add_row(left, right)
    table.add_row(Text(_facts(base_row), style="dim"), Text(_facts(cand_row), style="dim"))
    out.append(table)
    if measures:
        facts = [f"divergence {measures.get('divergence', 0):.2f}"]
        if measures.get("similarity") is not None:
            facts.append(f"similarity {measures['similarity']:.3f}")
        reasons = measures.get("reasons") or []
        out.append(term(", ".join(facts) + (": " + "; ".join(reasons) if reasons else "")))
    return out
