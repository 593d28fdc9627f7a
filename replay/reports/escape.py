"""Text from logs and endpoints is data: make it inert wherever it is printed.

A request id, a segment value, an answer or an error message may hold rich markup
(``[bold red]``), terminal escapes (``\\x1b[2J`` clears the screen, an OSC sets the
window title), bidi overrides that reorder what a reader sees, Markdown or HTML that
reshapes a pull-request comment, or characters XML 1.0 forbids. Every renderer passes
such text through one of these functions; none of them drops information: a control
character is shown as its escape (``\\x1b``), not removed.
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0, DEL, C1 (ESC, CSI, OSC, ...)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\ud800-\udfff"  # lone surrogates (cannot even be encoded to UTF-8)
    "\ufffe\uffff]"  # noncharacters XML forbids
)
_KEPT_MULTILINE = frozenset("\n\t")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: Any, multiline: bool = False) -> str:
    """``text`` with every control character shown as its escape (``\\x1b``, ``\\u202e``).

    One-line values (ids, names, reasons) show line breaks and tabs too; ``multiline``
    text (answers, prompts) keeps them, and turns ``\\r\\n`` into a line break."""
    text = str(text)
    if multiline:
        text = text.replace("\r\n", "\n")
        return _UNSAFE.sub(lambda m: m.group() if m.group() in _KEPT_MULTILINE else _escape(m.group()), text)
    return _UNSAFE.sub(lambda m: _escape(m.group()), text)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, and says so when it cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" … ({len(text) - limit:,} more characters)"


def term(text: Any, multiline: bool = False, style: str = "") -> Any:
    """A rich ``Text`` (never parsed as markup or emoji codes) of :func:`visible` text."""
    from rich.text import Text

    return Text(visible(text, multiline), style=style)


def markup(text: Any) -> str:
    """For a message built as rich markup: :func:`visible` text with markup escaped."""
    from rich.markup import escape

    return escape(visible(text))


_MD_SPECIAL = re.compile(r"[\\`*\[\]<>&|~$]|_(?![^\W_])|(?<![^\W_])_")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md(text: Any) -> str:
    """Inline Markdown (a table cell, a list item) that shows ``text`` as it is.

    Line breaks become visible ``\\n`` (a raw one would end a table row); ``<``, ``>`` and
    ``&`` become entities (no HTML); the other punctuation Markdown (and GitHub: ``~``
    strikethrough, ``$`` math, ``|`` cell ends) gives a meaning to is backslash-escaped.
    An underscore inside a word is left alone: it cannot start emphasis."""
    return _MD_SPECIAL.sub(lambda m: _MD_ENTITIES.get(m.group()) or "\\" + m.group(), visible(text))


def md_code(text: Any) -> str:
    """A Markdown code span of one-line ``text``: fenced with more backticks than it holds,
    its ``|`` escaped (GitHub tables split cells on a ``|`` even inside code)."""
    content = visible(text).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * (longest + 1)
    padded = content.startswith(" ") and content.endswith(" ") and content.strip()
    if content.startswith("`") or content.endswith("`") or padded:
        content = f" {content} "
    return f"{fence}{content}{fence}"


def xml(text: Any, multiline: bool = False) -> str:
    """:func:`visible` text, which XML 1.0 can hold (it forbids most control characters and
    lone surrogates); ElementTree escapes ``&``, ``<`` and quotes itself."""
    return visible(text, multiline)


__all__ = ["clip", "markup", "md", "md_code", "term", "visible", "xml"]
