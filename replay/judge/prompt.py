"""What the judge is shown: the request and the two answers, labelled A and B, A first.

A ``prompt_file`` template replaces :data:`DEFAULT_TEMPLATE`; it may use these placeholders,
each replaced once, in one pass (text inserted is never scanned again, so an answer that
contains ``{answer_b}`` stays as it is):

``{request}``   the conversation, one ``role: content`` line per message
``{answer_a}``  the answer shown first (required)
``{answer_b}``  the answer shown second (required)
``{rubric}``    the rubric (``rubric`` or ``rubric_file``, else :data:`DEFAULT_RUBRIC`)

Any other brace is left alone, so a template can show the JSON it asks for.
"""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_RUBRIC = (
    "Which answer better resolves the user's request? Consider correctness, helpfulness, completeness and tone; "
    "do not prefer an answer for being longer, or for being shown first."
)
DEFAULT_TEMPLATE = """You are comparing two answers to the same request.

{rubric}

[Request]
{request}

[Answer A]
{answer_a}
[End of answer A]

[Answer B]
{answer_b}
[End of answer B]

Reply with one JSON object and nothing else: {"winner": "A" | "B" | "tie", "reason": "<one or two sentences>"}"""
PLACEHOLDERS = ("request", "answer_a", "answer_b", "rubric")
REQUIRED = ("answer_a", "answer_b")
MAX_TEXT_CHARS = 20_000
"""The longest request or answer shown to the judge; the rest is cut, and the prompt says so."""
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def check_template(template: str) -> str | None:
    """Why ``template`` cannot be a judge prompt, or None."""
    missing = [name for name in REQUIRED if "{" + name + "}" not in template]
    if missing:
        return "the template must contain " + " and ".join("{" + name + "}" for name in missing)
    return None


def render_prompt(template: str | None, rubric: str | None, request: dict[str, Any], answer_a: str, answer_b: str) -> str:
    values = {
        "request": _cut(request_text(request)),
        "answer_a": _cut(answer_a),
        "answer_b": _cut(answer_b),
        "rubric": rubric if rubric is not None else DEFAULT_RUBRIC,
    }
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template or DEFAULT_TEMPLATE)


def request_text(request: dict[str, Any]) -> str:
    lines = []
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else message
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False)
        role = message.get("role", "?") if isinstance(message, dict) else "?"
        lines.append(f"{role}: {content}")
    return "\n".join(lines)


def answer_text(text: str | None, tool_calls: Any = ()) -> str:
    """An answer as the judge reads it: its text, then each tool call it made."""
    out = text or ""
    for call in tool_calls or ():
        name, arguments = (call.name, call.arguments) if hasattr(call, "name") else (call["name"], call["arguments"])
        out += f"\n[tool call] {name}({arguments})"
    return out


def _cut(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[:MAX_TEXT_CHARS] + f"\n[... {len(text) - MAX_TEXT_CHARS:,} more characters not shown]"
