"""What the comparators see (one :class:`Side` per arm, one :class:`CompareSpec` per run)
and the registry they join.

A comparator is a pure function ``(request, baseline, candidate, spec) -> measures``:
no store, no printing, so the same code serves ``replay compare`` and the tests.
The built-ins register through :func:`register_comparator` like any plugin would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from replay.compare.paths import parse_path
from replay.compare.schemas import compile_schema
from replay.types import ToolCall

DEFAULT_REFUSAL_PHRASES: tuple[str, ...] = (
    "I can't help with",
    "I cannot help with",
    "I can't assist",
    "I cannot assist",
    "I'm sorry, but I can't",
    "I'm sorry, but I cannot",
    "I am sorry, but I cannot",
    "I'm sorry, I can't",
    "I'm sorry, I cannot",
    "I am unable to",
    "I'm unable to help",
    "I'm unable to assist",
    "I'm unable to provide",
    "I'm not able to help",
    "I'm not able to assist",
    "I'm not able to provide",
    "I am not able to help",
    "I can't provide",
    "I cannot provide",
    "I can't comply",
    "I cannot comply",
    "I won't be able to help",
    "I must decline",
    "I can't do that",
    "I cannot do that",
    "As an AI language model, I cannot",
)
"""Openings of the stock refusals of current chat models, matched case-insensitively.

A bare "I'm sorry" is left out on purpose: "I'm sorry for the delay, your order..." is
an answer, not a refusal."""

JSON_MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class Side:
    """One arm's stored answer to one request, as the comparators see it."""

    ok: bool
    """The stored status is ``ok``."""
    error_class: str | None = None
    error_message: str | None = None
    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    finish_reason: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Side:
        """Read one dict as :meth:`replay.store.Store.results` yields it."""
        return cls.from_answer(tuple(row.get(name) for name in ANSWER_COLUMNS))

    @classmethod
    def from_answer(cls, row: tuple[Any, ...]) -> Side:
        """Read one row of :meth:`replay.store.Store.answers` (``ANSWER_COLUMNS``, in order).

        Built without the dataclass ``__init__``: a frozen one sets each of its fields through
        ``object.__setattr__``, twice per pair, which dominates reading a large run; filling
        ``__dict__`` at once costs a fraction of that and gives an equal, still frozen, object."""
        _, _, status, error_class, error_message, text, raw_calls, refusal, finish, latency, ttft, prompt, completion, cost = row
        side = _new(cls)
        side.__dict__.update(
            ok=status == "ok", error_class=error_class, error_message=error_message, text=text,
            tool_calls=tuple(_tool_call(item) for item in json.loads(raw_calls)) if raw_calls else (),
            refusal=refusal, finish_reason=finish, latency_ms=latency, ttft_ms=ttft, prompt_tokens=prompt,
            completion_tokens=completion, cost_usd=cost,
        )  # fmt: skip
        return side


ANSWER_COLUMNS = (
    "request_id", "arm", "status", "error_class", "error_message", "text", "tool_calls_json", "refusal",
    "finish_reason", "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "cost_usd",
)  # fmt: skip
"""The stored result columns a :class:`Side` is read from, in the order ``from_answer`` takes them."""

_new = object.__new__


def _tool_call(item: dict[str, Any]) -> ToolCall:
    arguments = item.get("arguments")
    if not isinstance(arguments, str):  # written by hand or by an older tool: keep it comparable
        arguments = "" if arguments is None else json.dumps(arguments)
    return ToolCall(id=item.get("id"), name=str(item.get("name") or ""), arguments=arguments)


@dataclass(frozen=True)
class Policy:
    name: str
    pattern: str
    """A regular expression that must not match the answer (text or tool-call arguments), case-insensitive."""


@dataclass(frozen=True)
class CompareSpec:
    """How to compare the pairs of one run; checked on construction so a typo fails before 100,000 pairs."""

    json: str = "auto"
    """``auto``: JSON is required where the request's ``response_format`` asks for it (or ``schema``
    is set); ``always``; ``never``."""
    schema: dict[str, Any] | None = None
    """A JSON Schema from the scenario; wins over the request's own ``json_schema``."""
    key_fields: tuple[str, ...] | None = None
    """JSON paths to compare; None compares every leaf path of the baseline's JSON."""
    ignore_paths: tuple[str, ...] = ()
    """Paths expected to differ (ids, timestamps); they and everything under them are skipped."""
    number_tolerance: float = 1e-6
    """Numbers are equal when ``abs(a - b) <= tol * max(1, |a|, |b|)``."""
    refusal_phrases: tuple[str, ...] = DEFAULT_REFUSAL_PHRASES
    policies: tuple[Policy, ...] = ()

    def __post_init__(self) -> None:
        for name in ("key_fields", "ignore_paths", "refusal_phrases", "policies"):
            value = getattr(self, name)
            if isinstance(value, str) and name != "policies":  # one path written without a list
                object.__setattr__(self, name, (value,))
            elif isinstance(value, list):  # a scenario loader may hand over YAML lists
                object.__setattr__(self, name, tuple(value))
        if any(isinstance(policy, dict) for policy in self.policies):  # {name, pattern} mappings from YAML
            object.__setattr__(self, "policies", tuple(_policy(item) for item in self.policies))
        if self.json not in JSON_MODES:
            raise ValueError(f"compare json must be one of {', '.join(JSON_MODES)}, not {self.json!r}")
        if self.number_tolerance < 0:
            raise ValueError("compare number_tolerance must be >= 0")
        if self.schema is not None:
            error = compile_schema(self.schema).error
            if error:
                raise ValueError(f"compare schema: {error}")
        for path in (*(self.key_fields or ()), *self.ignore_paths):
            parse_path(path)
        for policy in self.policies:
            try:
                re.compile(policy.pattern)
            except re.error as exc:
                raise ValueError(f"policy {policy.name!r}: bad pattern ({exc})") from None


def _policy(item: Policy | dict[str, Any]) -> Policy:
    if isinstance(item, Policy):
        return item
    if set(item) != {"name", "pattern"}:
        raise ValueError(f"a policy needs exactly 'name' and 'pattern', not {sorted(item)}")
    return Policy(str(item["name"]), str(item["pattern"]))


Comparator = Callable[[dict[str, Any], Side, Side, CompareSpec], dict[str, Any]]

COMPARATORS: dict[str, Comparator] = {}
"""Every comparator :func:`replay.compare.compare_pair` runs, in registration order."""


@dataclass(frozen=True)
class ComparatorInfo:
    """What a comparator reads of the :class:`CompareSpec` and which measures it writes: its
    stored measures stay valid while those options keep their values, and only they are
    recomputed when one changes."""

    options: tuple[str, ...] = ()
    """The :class:`CompareSpec` fields (``compare.*`` keys) the comparator reads."""
    measures: tuple[str, ...] = ()
    """Every key it returns (None included): what a partial recomputation replaces."""


COMPARATOR_INFO: dict[str, ComparatorInfo] = {}


def register_comparator(
    name: str, *, replace: bool = False, options: tuple[str, ...] = (), measures: tuple[str, ...] = ()
) -> Callable[[Comparator], Comparator]:
    """Register a comparator; a second one under the same name is an error unless ``replace``.

    A comparator reading ``CompareSpec`` options names them in ``options`` and its keys in
    ``measures``, so changing one option recomputes that comparator only."""

    def decorate(comparator: Comparator) -> Comparator:
        if name in COMPARATORS and not replace:
            raise ValueError(f"comparator {name!r} is already registered")
        COMPARATORS[name] = comparator
        COMPARATOR_INFO[name] = ComparatorInfo(tuple(options), tuple(measures))
        return comparator

    return decorate


ALL_COMPARATORS = "*"
"""The key of :func:`comparator_digests` that stands for the set of registered comparators."""


def comparator_digests(spec: CompareSpec) -> dict[str, str]:
    """comparator name -> digest of the options it reads, for the comparators that read some,
    and :data:`ALL_COMPARATORS` -> digest of every registered name: what each stored
    comparison is keyed by (stored with every row, so kept short)."""
    import hashlib
    from dataclasses import asdict, is_dataclass

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(item) for item in value]
        return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value

    def digest(data: Any) -> str:
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]

    digests = {ALL_COMPARATORS: digest(list(COMPARATORS))}
    for name in COMPARATORS:
        if COMPARATOR_INFO[name].options:
            digests[name] = digest({option: plain(getattr(spec, option)) for option in COMPARATOR_INFO[name].options})
    return digests
