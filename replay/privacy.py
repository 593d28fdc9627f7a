"""Redaction: personal data and credentials replaced by typed placeholders before anything is stored.

A scenario's ``redact:`` key turns it on. Every string of a record (its request, metadata,
logged answer and error) and of every arm's outcome (answer, tool calls, errors, attempts,
parameters) goes through one :class:`Redactor`, which replaces what its rules find with a
placeholder naming the kind of value: ``<EMAIL_1>``, ``<PHONE_2>``, ``<CARD_1>``,
``<IBAN_1>``, ``<API_KEY_1>``, ``<TOKEN_1>``, ``<IP_1>``, or a custom pattern's upper-cased
name (``<CUSTOMER_ID_1>``).

Placeholders are numbered per request and per kind, by order of first appearance in the
record: its request, then its metadata and error, then its logged answer. So the same value gets the
same placeholder in the logged request, the logged answer and every arm's answer of that
request, and comparisons still line up. The numbering depends on the record alone, never on
which arm answered first, so a ``--resume`` (which reads the record again) numbers it the
same way. A value that no part of the record holds (an arm made it up) is numbered after the
record's values, in order of appearance in that one answer: two arms inventing values each
start from the same number, whether or not they invented the same value. Nothing that maps
a placeholder back to its value is kept anywhere (a digest of a phone number is as good as
the number to anyone who can try them all).

Checksums keep look-alikes out: card numbers must pass Luhn and start like a card issuer's,
IBANs must have their country's length and pass mod-97; phone numbers need a ``+``, a
trunk ``0`` or the ``(555) 123-4567`` shape, never a bare run of digits (order numbers,
epoch timestamps).

With redaction off nothing here is called: the run's hot path is unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

from replay.errors import InputError, LogFormatError
from replay.types import Completion, LogRecord, Outcome, ToolCall

RULES = ("email", "phone", "card", "iban", "api_key", "token", "ip")
"""The built-in rules, in the order ``redact: true`` lists them."""

KINDS = {"email": "EMAIL", "phone": "PHONE", "card": "CARD", "iban": "IBAN", "api_key": "API_KEY", "token": "TOKEN",
         "ip": "IP"}  # fmt: skip
"""Rule -> the word its placeholders carry."""

PATTERN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
"""A custom pattern's name: it becomes the placeholder's word, upper-cased."""

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
"""What a placeholder looks like: later passes never rewrite one."""

MIN_LENGTH = 6
"""No built-in finds anything in a shorter string (``a@b.io``, ``1.1.1.1``): roles, names and
enum values are skipped without a regex."""

CLEAN_MIN = 64
CLEAN_CACHE = 4096
"""Strings of at least CLEAN_MIN characters found clean are remembered, up to CLEAN_CACHE of them
(a few MB at most): system prompts and tool schemas repeat in every record of a log."""


@dataclass(frozen=True)
class Redaction:
    """The scenario's ``redact:`` key, checked (:func:`replay.scenario_file`)."""

    rules: tuple[str, ...] = RULES
    patterns: dict[str, str] = field(default_factory=dict)
    """Custom patterns by name, in the scenario's order (each its own pass, before the built-ins)."""
    before_send: bool = False
    """Also redact what is sent to the arms (a third-party candidate must not see customer data)."""

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> "Redaction":
        return cls(tuple(data.get("rules") or ()), dict(data.get("patterns") or {}), bool(data.get("before_send")))


def describe(redaction: dict[str, Any]) -> str:
    """One line for the reports: what was redacted, and what the arms and the comparisons saw."""
    rules = list(redaction.get("rules") or ()) + [f"{name} (pattern)" for name in redaction.get("patterns") or {}]
    what = ", ".join(rules)
    if redaction.get("before_send"):
        return f"{what} redacted before sending and storing: the arms got redacted requests; comparisons ran on redacted text"
    return f"{what} redacted before storing: the arms got the original requests; comparisons ran on redacted text"


def report_fields(redaction: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON report's ``redaction`` object (None: the run redacted nothing)."""
    if not redaction:
        return None
    return {"rules": list(redaction.get("rules") or ()), "patterns": list(redaction.get("patterns") or {}),
            "before_send": bool(redaction.get("before_send")), "compared_on": "redacted text"}  # fmt: skip


# --- checks the placeholders' values must pass -------------------------------------------


def luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = ord(char) - 48
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def _card_issuer(digits: str) -> bool:
    """Visa, Mastercard (51-55, 2221-2720), Amex, Diners, JCB, Discover, UnionPay, Maestro:
    a first digit of 3 to 6, or Mastercard's 2-series. An epoch in milliseconds starts with 1."""
    return digits[0] in "3456" or 2221 <= int(digits[:4]) <= 2720


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
"""Characters in each country's IBAN (the SWIFT IBAN registry)."""


def mod97(iban: str) -> bool:
    """ISO 13616: the country and check digits moved to the end, letters as 10-35, mod 97 is 1."""
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def _card_end(text: str) -> int:
    """Where the card number in this candidate ends (0: none): groups dropped from the end until
    what is left is 13 to 19 digits of an issuer that pass Luhn."""
    groups = re.split(r"[ -]", text)
    while groups:
        digits = "".join(groups)
        if 13 <= len(digits) <= 19 and _card_issuer(digits) and luhn(digits):
            return len(" ".join(groups))
        groups.pop()
    return 0


def _iban_end(text: str) -> int:
    """Where the IBAN in this candidate ends: its country's length of letters and digits, mod-97 checked."""
    length = IBAN_LENGTHS.get(text[:2].upper())
    if length is None:
        return 0
    seen = 0
    for index, char in enumerate(text):
        if char != " ":
            seen += 1
            if seen == length:
                compact = text[: index + 1].replace(" ", "").upper()
                return index + 1 if compact[2:4].isdigit() and mod97(compact) else 0
    return 0


def _phone_end(text: str) -> int:
    digits = sum(char.isdigit() for char in text)
    if text[0] == "+":
        return len(text) if 8 <= digits <= 15 else 0
    if text[0] == "0":  # a national number: one kind of separator (a date mixes them, and has 8 digits)
        separators = set(re.findall(r"[ .-]", text))
        return len(text) if 9 <= digits <= 12 and len(separators) <= 1 else 0
    return len(text)  # (555) 123-4567, 555-123-4567


def _ipv6_end(text: str) -> int:
    """A valid address with at least two groups written (``::1`` and ``a::b`` in code are left alone)."""
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return 0
    written = [group for group in text.split(":") if group]
    return len(text) if len(written) >= 2 and any(char.isdigit() for char in text) else 0


def _whole(text: str) -> int:
    return len(text)


# --- the built-in rules --------------------------------------------------------------------
#
# Python's regex engine costs about 10 ns a character for each pattern tried at each position,
# so the built-ins run as few passes as they can: one over every text for the rules that start
# with a digit, '+' or '(' (card, IPv4, phone: the pattern begins with that character class, which
# the engine skips to in C), one for IBANs (which start with two capitals), and the others only
# over texts holding what they need (an '@', "Bearer", a key's prefix, "::").


@dataclass(frozen=True)
class _Pass:
    rules: frozenset[str]
    """The rules this pass finds (it runs when any of them is chosen)."""
    pattern: str
    groups: dict[str, tuple[str, Callable[[str], int], bool]]
    """Named group -> (rule, where the value ends in its text (0: no value), whether the group is
    an empty marker at the start of its branch, the value being the whole match); none for the
    email pass, whose pattern finds the domain from the ``@`` (:func:`_emails`)."""
    gate: Callable[[str], bool] | None = None
    """A test cheaper than the pattern that a text must pass for the pattern to be tried."""


def _ipv4_end(text: str) -> int:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return 0
    return len(text)


_KEY_PREFIXES = ("sk-", "sk_", "pk_", "rk_", "gh", "AKIA", "ASIA", "AIza", "xox", "glpat-", "hf_")
_ASSIGNED = ("key", "secret", "passw")


def _may_hold_key(text: str) -> bool:
    return any(prefix in text for prefix in _KEY_PREFIXES)


def _may_assign_key(text: str) -> bool:
    if "=" not in text and ":" not in text:
        return False
    lower = text.lower()
    return any(word in lower for word in _ASSIGNED)


_PASSES = (
    _Pass(frozenset({"token"}),
          r"(?<![\w-])(?i:bearer)[ \t]+(?=[A-Za-z0-9._~+/-]*[0-9])(?P<token>[A-Za-z0-9._~+/-]{8,}=*)"
          r"|(?<![\w-])(?P<token_jwt>eyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,})",
          {"token": ("token", _whole, False), "token_jwt": ("token", _whole, False)},
          lambda text: "earer" in text or "EARER" in text or "eyJ" in text),
    _Pass(frozenset({"api_key"}),
          r"(?<![\w-])(?P<api_key>sk-[A-Za-z0-9_-]{20,}|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
          r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}"
          r"|xox[abposr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,})(?![\w-])",
          {"api_key": ("api_key", _whole, False)}, _may_hold_key),
    _Pass(frozenset({"api_key"}),
          r"(?i:api[_-]?key|secret|password|passwd)[\"']?[ \t]*[:=][ \t]*[\"']?(?P<api_key_assigned>[A-Za-z0-9_\-./+]{12,})",
          {"api_key_assigned": ("api_key", _whole, False)}, _may_assign_key),
    _Pass(frozenset({"email"}), r"@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])", {}, lambda text: "@" in text),
    _Pass(frozenset({"iban"}), r"[A-Z](?<![\w][A-Z])(?P<iban>)[A-Z][0-9]{2}(?: ?[A-Z0-9]){11,30}(?![a-z])",
          {"iban": ("iban", _iban_end, True)}),
    _Pass(frozenset({"ip"}), r"(?<![\w:.])(?P<ipv6>(?:[0-9A-Fa-f]{1,4}:|:){2,7}(?:[0-9A-Fa-f]{1,4}|:))(?![\w:])",
          {"ipv6": ("ip", _ipv6_end, False)}, lambda text: "::" in text or text.count(":") >= 7),
    _Pass(frozenset({"card", "ip", "phone"}),
          r"[0-9+(](?<![\w+.,-][0-9+(])(?:"
          r"(?<=[0-9])(?P<card>)(?:[0-9]{12,18}|[0-9]{3}(?:[ -][0-9]{3,6}){2,4})(?![\w]|[.,][0-9])"
          r"|(?<=[0-9])(?P<ipv4>)[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?![\w]|\.[0-9])"
          r"|(?P<phone>)(?:(?<=\+)[0-9]{1,3}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?(?:[0-9][ .-]?){5,13}[0-9]"
          r"|(?<=\()[0-9]{3}\)[ .-]?[0-9]{3}[.-][0-9]{4}"
          r"|(?<=[0-9])[0-9]{2}[.-][0-9]{3}[.-][0-9]{4}"
          r"|(?<=0)[0-9]{1,4}(?:[ .-][0-9]{2,8}){1,4})(?![\w]|[.-][0-9]))",
          {"card": ("card", _card_end, True), "ipv4": ("ip", _ipv4_end, True), "phone": ("phone", _phone_end, True)}),
)


def _emails(domains: re.Pattern[str], text: str, marks: Marks) -> str:
    """Emails found from their ``@`` (which the regex engine finds fast), the local part read
    back from it: a pattern starting with the local part is tried at every word of the text."""
    out: list[str] = []
    last = 0
    for match in domains.finditer(text):
        at = start = match.start()
        while start > last and (text[start - 1].isalnum() or text[start - 1] in "_.%+-"):
            start -= 1
        if start == at:
            continue
        out += [text[last:start], marks.mark("EMAIL", text[start:match.end()].lower())]
        last = match.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _canonical(rule: str, value: str) -> str:
    """The form two spellings of one value share (a card with or without spaces, an email's case)."""
    if rule in ("card", "phone"):
        return "".join(char for char in value if char.isdigit() or char == "+")
    if rule == "iban":
        return value.replace(" ", "").upper()
    if rule == "email":
        return value.lower()
    if rule == "ip" and ":" in value:
        return str(ipaddress.IPv6Address(value))
    return value


class Marks:
    """A request's placeholders: value -> placeholder, and the count of each kind so far."""

    __slots__ = ("seen", "counts")

    def __init__(self, seen: dict[tuple[str, str], str] | None = None, counts: dict[str, int] | None = None) -> None:
        self.seen = seen if seen is not None else {}
        self.counts = counts if counts is not None else {}

    def mark(self, kind: str, value: str) -> str:
        key = (kind, value)
        placeholder = self.seen.get(key)
        if placeholder is None:
            number = self.counts.get(kind, 0) + 1
            self.counts[kind] = number
            placeholder = self.seen[key] = f"<{kind}_{number}>"
        return placeholder

    def fork(self) -> "Marks":
        """The record's placeholders, for one answer: what it alone holds is numbered for it alone."""
        return Marks(dict(self.seen), dict(self.counts))


class Redactor:
    """Applies one scenario's rules: patterns compiled once, the built-ins in as few passes as they allow."""

    def __init__(self, redaction: Redaction) -> None:
        self.redaction = redaction
        chosen = set(redaction.rules)
        self._passes = [(re.compile(p.pattern), p.groups, p.gate) for p in _PASSES if p.rules & chosen]
        self._chosen = frozenset(chosen)
        self._custom = [(name.upper(), re.compile(pattern)) for name, pattern in redaction.patterns.items()]
        self._clean: set[str] = set()
        """Long strings the built-ins found nothing in (see :meth:`strings`)."""

    # --- text ------------------------------------------------------------------------------

    def text(self, text: str, marks: Marks) -> str:
        """The custom patterns first (in their order, each leaving the placeholders before it
        alone), then the built-ins."""
        for kind, pattern in self._custom:
            text = _outside_placeholders(text, lambda part: pattern.sub(lambda m: marks.mark(kind, m.group()), part))
        return self._builtins(text, marks)

    def _builtins(self, text: str, marks: Marks) -> str:
        if len(text) < MIN_LENGTH:
            return text
        for pattern, groups, gate in self._passes:
            if gate is None or gate(text):
                if groups:
                    text = pattern.sub(lambda match: self._replace(match, groups, marks), text)
                else:
                    text = _emails(pattern, text, marks)
        return text

    def _replace(self, match: re.Match[str], groups: dict[str, tuple[str, Callable[[str], int], bool]],
                 marks: Marks) -> str:  # fmt: skip
        whole = match.group()
        group = match.lastgroup
        assert group is not None
        rule, find_end, marker = groups[group]
        if rule not in self._chosen:
            return whole
        start = 0 if marker else match.start(group) - match.start()
        value = whole[start:] if marker else match.group(group)
        end = find_end(value)
        if not end:
            return whole
        placeholder = marks.mark(KINDS[rule], _canonical(rule, value[:end]))
        return whole[:start] + placeholder + whole[start + end:]

    def strings(self, strings: list[str], marks: Marks) -> list[str]:
        """Many strings in document order, as :meth:`text` would each, in one pass of each built-in
        over them joined by NUL (which no built-in matches or looks past: a match never spans two,
        and each starts and ends as a string does). The same list when nothing changed.

        Long strings found clean are remembered (a system prompt, the tools' schemas: the same in
        every record) and not scanned again; what is remembered holds nothing to redact."""
        if self._custom:
            strings = [self.text(text, marks) for text in strings]  # a custom pattern may match a NUL
            if not self._passes:
                return strings
        clean = self._clean
        todo = [index for index, text in enumerate(strings) if len(text) >= MIN_LENGTH and text not in clean]
        if not todo:
            return strings
        scanned = strings if len(todo) == len(strings) else [strings[index] for index in todo]
        joined = SEPARATOR.join(scanned)
        redacted = self._builtins(joined, marks)
        if redacted == joined:
            self._remember(scanned, scanned)
            return strings
        parts = redacted.split(SEPARATOR)
        if len(parts) != len(scanned):  # a string held a NUL itself: each on its own (same numbering)
            parts = [self._builtins(text, marks) for text in scanned]
        self._remember(scanned, parts)
        out = list(strings)
        for index, part in zip(todo, parts):
            out[index] = part
        return out

    def _remember(self, scanned: list[str], redacted: list[str]) -> None:
        if len(self._clean) >= CLEAN_CACHE:
            return
        for before, after in zip(scanned, redacted):
            if len(before) >= CLEAN_MIN and before == after:
                self._clean.add(before)

    def optional(self, text: str | None, marks: Marks) -> str | None:
        return None if text is None else self.text(text, marks)

    def data(self, value: Any, marks: Marks) -> Any:
        """A JSON value with every string (keys too) redacted, in document order."""
        found: list[str] = []
        _collect(value, found)
        redacted = self.strings(found, marks)
        return value if redacted is found else _rebuild(value, iter(redacted))

    # --- records and outcomes -----------------------------------------------------------------

    def record(self, record: LogRecord) -> tuple[LogRecord, Marks]:
        """The record as it may be stored (and sent, with ``before_send``), and its placeholders:
        request, metadata, logged answer and error in one pass (document order)."""
        marks = Marks()
        answer = record.answer
        parts: list[str] = []
        for value in (record.request, record.metadata, record.error):
            _collect(value, parts)
        if answer is not None:
            parts += _completion_strings(answer)
        redacted = self.strings(parts, marks)
        if redacted is parts:
            return record, marks
        texts = iter(redacted)
        request, metadata, error = (_rebuild(value, texts) for value in (record.request, record.metadata, record.error))
        stored = _with_strings(answer, texts) if answer is not None else None
        return replace(record, request=request, metadata=metadata, error=error, read_answer=lambda: stored), marks

    def completion(self, completion: Completion, marks: Marks) -> Completion:
        found = _completion_strings(completion)
        redacted = self.strings(found, marks)
        return completion if redacted is found else _with_strings(completion, iter(redacted))

    def outcome(self, outcome: Outcome, marks: Marks) -> Outcome:
        """An arm's outcome as it may be stored: its answer, parameters, error and attempts' errors,
        in one pass (answers it alone holds numbered for it alone)."""
        marks = marks.fork()
        completion = outcome.completion
        parts = _completion_strings(completion) if completion is not None else []
        _collect(outcome.params, parts)
        errors = [outcome.error_message, *(attempt.error_message for attempt in outcome.attempts)]
        parts += [error for error in errors if error is not None]
        redacted = self.strings(parts, marks)
        if redacted is parts:
            return outcome
        texts = iter(redacted)
        if completion is not None:
            completion = _with_strings(completion, texts)
        params = _rebuild(outcome.params, texts)
        error_message = next(texts) if outcome.error_message is not None else None
        attempts = tuple(attempt if attempt.error_message is None else replace(attempt, error_message=next(texts))
                         for attempt in outcome.attempts)  # fmt: skip
        return replace(outcome, completion=completion, attempts=attempts, params=params, error_message=error_message)


    def error(self, error: InputError) -> InputError:
        """A log's error as it may be printed: a malformed record's message may quote its values."""
        marks = Marks()
        if isinstance(error, LogFormatError):
            reason = self.text(error.reason, marks)
            return error if reason == error.reason else LogFormatError(error.location, reason)
        said = self.text(str(error), marks)
        if said == str(error):
            return error
        try:
            return type(error)(said)
        except TypeError:  # a subclass built from other arguments
            return InputError(said)


SEPARATOR = "\x00"


def _collect(value: Any, into: list[str]) -> None:
    """Every string of a JSON value (each key before its value) in document order."""
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                into.append(key)
            _collect(item, into)
    elif isinstance(value, list):
        for item in value:
            _collect(item, into)


def _rebuild(value: Any, texts: Iterator[str]) -> Any:
    """``value`` with its strings taken in :func:`_collect`'s order from ``texts``."""
    if isinstance(value, str):
        return next(texts)
    if isinstance(value, dict):  # the key is evaluated before its value
        return {(next(texts) if isinstance(key, str) else key): _rebuild(item, texts) for key, item in value.items()}
    if isinstance(value, list):
        return [_rebuild(item, texts) for item in value]
    return value


def _completion_strings(completion: Completion) -> list[str]:
    """What an answer says: its text, its refusal, its tool calls' arguments."""
    found = [text for text in (completion.text, completion.refusal) if text is not None]
    return found + [call.arguments for call in completion.tool_calls]


def _with_strings(completion: Completion, texts: Iterator[str]) -> Completion:
    text = next(texts) if completion.text is not None else None
    refusal = next(texts) if completion.refusal is not None else None
    calls = tuple(ToolCall(call.id, call.name, next(texts)) for call in completion.tool_calls)
    return replace(completion, text=text, refusal=refusal, tool_calls=calls)


def _outside_placeholders(text: str, substitute: Callable[[str], str]) -> str:
    """Apply ``substitute`` to the text between the placeholders already in it."""
    if "<" not in text:
        return substitute(text)
    parts = PLACEHOLDER.split(text)
    if len(parts) == 1:
        return substitute(text)
    placed = PLACEHOLDER.findall(text)
    out = [substitute(parts[0])]
    for placeholder, part in zip(placed, parts[1:]):
        out += [placeholder, substitute(part)]
    return "".join(out)


def redactor_for(redaction: Redaction | None) -> Redactor | None:
    return None if redaction is None else Redactor(redaction)


# --- checking the scenario key -------------------------------------------------------------


class RedactionError(ValueError):
    """A bad ``redact:`` key: ``key`` names it (``redact.rules[2]``, ``redact.patterns.name``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


REDACT_KEYS = ("rules", "patterns", "before_send")


def parse_redaction(value: Any) -> Redaction | None:
    """``redact: true`` (every built-in), ``false``, or ``{rules, patterns, before_send}``."""
    import difflib

    if value is True:
        return Redaction()
    if value is False or value is None:
        return None
    if not isinstance(value, dict):
        raise RedactionError("redact", f"expected true, false or a mapping with {', '.join(REDACT_KEYS)}")
    for key in value:
        if key not in REDACT_KEYS:
            hint = difflib.get_close_matches(str(key), REDACT_KEYS, n=1)
            raise RedactionError(f"redact.{key}", "unknown key" + (f" (did you mean 'redact.{hint[0]}'?)" if hint else ""))
    rules = _rules(value.get("rules", list(RULES)))
    patterns = _patterns(value.get("patterns") or {})
    before_send = value.get("before_send", False)
    if not isinstance(before_send, bool):
        raise RedactionError("redact.before_send", f"expected true or false, got {before_send!r}")
    if not rules and not patterns:
        raise RedactionError("redact.rules", "no rule and no pattern: nothing would be redacted (leave 'redact' out instead)")
    return Redaction(rules, patterns, before_send)


def _rules(rules: Any) -> tuple[str, ...]:
    import difflib

    if not isinstance(rules, list):
        raise RedactionError("redact.rules", f"expected a list of rules ({', '.join(RULES)})")
    for index, rule in enumerate(rules):
        if rule not in RULES:
            hint = difflib.get_close_matches(str(rule), RULES, n=1)
            said = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise RedactionError(f"redact.rules[{index}]", f"unknown rule {rule!r}{said}; the rules are {', '.join(RULES)}")
    return tuple(rule for rule in RULES if rule in rules)


def _patterns(patterns: Any) -> dict[str, str]:
    if not isinstance(patterns, dict):
        raise RedactionError("redact.patterns", "expected a mapping of name: regular expression")
    kinds = set(KINDS.values())
    for name, pattern in patterns.items():
        key = f"redact.patterns.{name}"
        if not isinstance(name, str) or not PATTERN_NAME.fullmatch(name):
            raise RedactionError(key, "a name is a letter then letters, digits or _ (it names the placeholder, <NAME_1>)")
        if name.upper() in kinds:
            raise RedactionError(key, f"<{name.upper()}_n> is the built-in rule's placeholder: name the pattern otherwise")
        if not isinstance(pattern, str) or not pattern:
            raise RedactionError(key, "expected a regular expression")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise RedactionError(key, f"not a valid regular expression ({exc})") from None
        if compiled.fullmatch(""):
            raise RedactionError(key, "matches the empty string: it would put a placeholder everywhere")
    return {str(name): str(pattern) for name, pattern in patterns.items()}
