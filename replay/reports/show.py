"""``replay show``: one request and its two answers side by side, differences marked.

Differences are marked by word: struck through on the baseline side, underlined on
the candidate side, and also bracketed ``[-removed-]`` / ``{+added+}`` so that they
stay visible without colour (NO_COLOR, CI logs, copy and paste); a one-line legend says
so. When a side failed, its error is shown as an error, not diffed against an answer.
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
LEGEND = "[-words-] only in the baseline's answer, {+words+} only in the candidate's"


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


def _answer(row: dict[str, Any]) -> str:
    """An answer's text, refusal and tool calls, line breaks kept, controls shown as escapes."""
    parts = [row.get("text") or ""]
    if row.get("refusal"):
        parts.append(f"(refusal: {row['refusal']})")
    for call in json.loads(row.get("tool_calls_json") or "[]"):
        parts.append(f"tool call {call['name']}({call['arguments']})")
    return visible("\n".join(part for part in parts if part) if len(parts) > 1 else parts[0], multiline=True)


def _failure(row: dict[str, Any] | None) -> Any:
    """What stands in for an answer that is not there: an error is shown as an error."""
    from rich.text import Text

    if row is None:
        return Text("(no answer stored)", style="dim")
    text = Text("ERROR ", style="bold red")
    message = clip(visible(row.get("error_message") or ""), MAX_ERROR_CHARS)
    return text.append(visible(f"{row.get('error_class')}: ") + message, style="red")


def _facts(row: dict[str, Any] | None) -> str:
    if row is None or row["status"] != "ok":
        return "—"
    parts = [f"finish {visible(row.get('finish_reason'))}"]
    if row.get("latency_ms") is not None:
        parts.append(f"{row['latency_ms']:,.0f} ms")
    if row.get("ttft_ms") is not None:
        parts.append(f"TTFT {row['ttft_ms']:,.0f} ms")
    if row.get("completion_tokens") is not None:
        parts.append(f"tokens {row.get('prompt_tokens')} in, {row['completion_tokens']} out")
    if row.get("cost_usd") is not None:
        parts.append(f"${row['cost_usd']:.5f}")
    return ", ".join(parts)


def _answers(base_row: dict[str, Any] | None, cand_row: dict[str, Any] | None) -> tuple[Any, Any, bool]:
    """The two answer cells, and whether they are a word diff (only when both sides answered:
    an error message diffed against an answer would mark every word)."""
    from rich.text import Text

    def answered(row: dict[str, Any] | None) -> bool:
        return row is not None and row["status"] == "ok"

    if base_row is not None and cand_row is not None and answered(base_row) and answered(cand_row):
        left, right = diff_texts(_answer(base_row), _answer(cand_row))
        return left, right, bool(left.spans or right.spans)
    left, right = (Text(_answer(row)) if row is not None and answered(row) else _failure(row) for row in (base_row, cand_row))
    return left, right, False


MAX_JUDGE_REASON_CHARS = 1_000


def judge_text(model: str, verdict: Any) -> Any:
    """The judge's verdict and reason on the pair (escaped, capped), or that it did not judge it."""
    from replay.reports.format import JUDGE_SAYS

    if verdict is None:
        return term(f"judge {model}: not judged (errors on either side, not in the sample, or not yet: replay judge RUN)",
                    style="dim")  # fmt: skip
    said = JUDGE_SAYS.get(verdict.outcome, verdict.outcome)
    if verdict.identical:
        said += " (identical answers, no call)"
    elif verdict.consistent is False:
        said += " (the verdict flipped when the answers swapped places)"
    line = term(f"judge {model}: ", style="bold").append(visible(said))
    if verdict.reason:
        line.append(": " + clip(visible(verdict.reason, multiline=True), MAX_JUDGE_REASON_CHARS))
    return line


def render_pair(run: Any, request: dict[str, Any], metadata: dict[str, Any], rows: dict[str, dict[str, Any]],
                measures: dict[str, Any] | None, judge: Any = None) -> list[Any]:  # fmt: skip
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from replay.evaluate import baseline_arm
    from replay.reports.terminal import Trimmed

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
        out.append(term(f"response_format: {json.dumps(request['response_format'])[:200]}"))
    base_row, cand_row = rows.get(base_arm), rows.get(ARM_CANDIDATE)
    left, right, diffed = _answers(base_row, cand_row)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    cand_model = (run.scenario.get("candidate") or {}).get("model", "")
    table.add_column(term(f"Baseline ({base_arm})"), ratio=1, overflow="fold")
    table.add_column(term(f"Candidate ({cand_model})"), ratio=1, overflow="fold")
    table.add_row(left, right)
    table.add_row(Text(_facts(base_row), style="dim"), Text(_facts(cand_row), style="dim"))
    out.append(table)
    if diffed:
        out.append(Text(LEGEND, style="dim"))
    if measures:
        facts = [f"divergence {measures.get('divergence', 0):.2f}"]
        if measures.get("similarity") is not None:
            facts.append(f"similarity {measures['similarity']:.3f}")
        if measures.get("semantic_similarity") is not None:
            facts.append(f"semantic similarity {measures['semantic_similarity']:.3f}")
        reasons = measures.get("reasons") or []
        out.append(term(", ".join(facts) + (": " + "; ".join(reasons) if reasons else "")))
    if run.scenario.get("judge"):
        out.append(judge_text(str(run.scenario["judge"]["arm"]["model"]), judge))
    return [Trimmed(renderable) for renderable in out]


def _new_messages(request: dict[str, Any], first: bool) -> list[dict[str, Any]]:
    """What a turn adds to the conversation: everything for the first, else what follows the
    last assistant message (the tool results, the user's next message)."""
    messages = [m for m in request.get("messages") or [] if isinstance(m, dict)]
    if first:
        return messages
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    return messages[last + 1:]


def _message_line(message: dict[str, Any]) -> Any:
    content = message.get("content")
    if not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False)
    role = term(f"{message.get('role', '?')}: ", style="bold")
    return role.append(clip(visible(content, multiline=True), MAX_MESSAGE_CHARS))


def render_session(run: Any, session: Any, cases: dict[str, tuple[dict[str, Any], dict[str, Any]]],
                   rows: dict[str, dict[str, dict[str, Any]]]) -> list[Any]:  # fmt: skip
    """One conversation turn by turn: what each turn added, then both arms' answers side by side.

    ``session`` is a :class:`replay.session_metrics.SessionResult`; ``rows`` maps each turn's
    request id to its stored result rows by arm."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from replay.evaluate import baseline_arm
    from replay.reports.terminal import Trimmed

    closed = run.scenario.get("sessions") == "closed_loop"
    base_arm = "logged" if closed else baseline_arm(run)
    cand_model = (run.scenario.get("candidate") or {}).get("model", "")
    how = "closed loop: the candidate saw its own previous turns" if closed else "open loop: every turn with its logged history"
    title = term(f"Session {clip(visible(session.session), 200)}", style="bold")
    title.append(visible(f"  ({how}; {session.turns} turns"))
    if session.diverged_at is not None:
        title.append(visible(f"; diverged at turn {session.diverged_at}: {session.reason}"))
    title.append(")")
    out: list[Any] = [title]
    for number, request_id in enumerate(session.request_ids, start=1):
        request = cases.get(request_id, ({}, {}))[0]
        out.append(Text(""))
        out.append(term(f"Turn {number} of {session.turns}  ", style="bold").append(visible(request_id)))
        out += [_message_line(message) for message in _new_messages(request, number == 1)]
        turn_rows = rows.get(request_id, {})
        base_row, cand_row = turn_rows.get(base_arm), turn_rows.get(ARM_CANDIDATE)
        left, right, _ = _answers(base_row, cand_row)
        if cand_row is None and closed and session.diverged_at is not None and number > session.diverged_at:
            right = Text(f"not sent (the session diverged at turn {session.diverged_at})", style="dim")
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
        table.add_column(term(f"Baseline ({base_arm})"), ratio=1, overflow="fold")
        table.add_column(term(f"Candidate ({cand_model})"), ratio=1, overflow="fold")
        table.add_row(left, right)
        table.add_row(Text(_facts(base_row), style="dim"), Text(_facts(cand_row), style="dim"))
        out.append(table)
        if number == session.diverged_at:
            out.append(term(f"diverged at turn {number}: {session.reason}", style="yellow"))
    return [Trimmed(renderable) for renderable in out]
