"""The scenario: what a run replays, against which arms, and how it is decided.

Plain frozen data that the runner, the store and the CLI share; reading and checking a
scenario file is :mod:`replay.scenario_file`'s job. Kept light on purpose (no numpy, no
gates): the runner imports it.
Secrets never appear here: an arm names the environment variable holding its key.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from replay.readers.base import DEFAULT_MAX_RECORD_MB
from replay.sampling import SampleSpec

if TYPE_CHECKING:
    from replay.privacy import Redaction

TRANSPORTS = ("native", "aiohttp", "httpx")
"""HTTP clients an arm can use: replay's own HTTP/1.1 client (default), aiohttp or httpx."""

BASELINE_MODES = ("logged", "fresh")
PROMPT_MODES = ("replace", "prepend", "append")
"""How ``transform.system_prompt_file`` meets the logged system (or developer) message."""


@dataclass(frozen=True)
class Limits:
    concurrency: int = 16
    rpm: float | None = None
    tpm: float | None = None
    timeout_s: float = 120.0
    max_attempts: int = 5
    max_response_mb: float = 10.0
    """A larger answer is an error (``response_too_large``) and is read no further."""


@dataclass(frozen=True)
class SystemPrompt:
    """A system prompt read from its file when the scenario is loaded: the run keeps the text,
    so a later edit of the file changes neither an old run's report nor a resume."""

    file: str
    """The path as the scenario wrote it (what reports name)."""
    text: str
    sha256: str
    mode: str = "replace"


@dataclass(frozen=True)
class Transform:
    """How an arm rewrites each logged request before sending it (:mod:`replay.transforms`)."""

    system_prompt: SystemPrompt | None = None
    model_map: dict[str, str] = field(default_factory=dict)
    """The model to send per logged model; the arm's ``model`` for any other."""
    patch: tuple[dict[str, Any], ...] = ()
    """RFC 6902 operations applied to the body as sent."""
    hook: str | None = None
    """``module:callable``, called as ``callable(request, record) -> request``."""

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Transform:
        prompt = data.get("system_prompt")
        return cls(SystemPrompt(**prompt) if prompt else None, dict(data.get("model_map") or {}),
                   tuple(data.get("patch") or ()), data.get("hook"))  # fmt: skip


@dataclass(frozen=True)
class Arm:
    """An endpoint to replay against: the candidate, or production for a fresh baseline."""

    base_url: str
    model: str
    api_key_env: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    """Merged into every request; a scenario file starts from the provider's ``default_params``."""
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = True
    transport: str = "native"
    """``native`` (replay's own HTTP/1.1 client, the fastest), ``aiohttp`` or ``httpx``."""
    limits: Limits = Limits()
    provider: str = "openai"
    """The API the endpoint speaks, by its name in :mod:`replay.providers`' registry."""
    default_max_tokens: int | None = None
    """``max_tokens`` for a request whose log has none, where the API requires one (``provider:
    anthropic``; its default is 4096)."""
    transform: Transform | None = None


EMBEDDINGS_BATCH_SIZE = 64
"""Texts sent per embeddings call by default: 100,000 pairs take at most 3,125 calls, a batch's
answer (64 vectors of 3,072 floats, ~4 MB of JSON) stays under the 10 MB answer cap, and a
batch that fails costs 64 texts' worth of retrying, not the 2,048 OpenAI would accept."""


@dataclass(frozen=True)
class Embeddings:
    """An OpenAI-compatible ``/v1/embeddings`` endpoint for ``semantic_similarity``."""

    endpoint: Arm
    """Its URL, model, key, headers, transport and limits, as for an arm (no params, no streaming)."""
    batch_size: int = EMBEDDINGS_BATCH_SIZE


@dataclass(frozen=True)
class Judge:
    """The pairwise LLM judge (``judge:``): an endpoint like an arm, and what it is asked.

    Texts read from files (``rubric_file``, ``prompt_file``) are stored here, not their paths,
    so a later edit of a file cannot change what an old run's verdicts meant."""

    arm: Arm
    rubric: str | None = None
    """None: :data:`replay.judge.prompt.DEFAULT_RUBRIC`."""
    prompt: str | None = None
    """A template replacing the default prompt (see :mod:`replay.judge.prompt` for its placeholders)."""
    both_orders: bool = True
    sample: int | None = None
    """Judge at most this many pairs (each segment at the same rate); None: every pair that differs."""
    allow_self_judge: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    logs: tuple[str, ...]
    candidate: Arm
    sample: SampleSpec = SampleSpec()
    baseline: str = "logged"
    production: Arm | None = None
    budget_usd: float | None = None
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    log_format: str = "auto"
    """``format``: a registered reader, or ``auto`` (each file's source detected from its first records)."""
    log_mapping: dict[str, str] | None = None
    """``mapping``: the fields of a ``csv``/``jsonl`` log (``log_format`` is then its registered reader)."""
    max_record_mb: float = DEFAULT_MAX_RECORD_MB
    """The longest log line read, in MB (2**20 bytes); ``max_record_mb`` or ``--max-record-mb``."""
    search_dirs: tuple[str, ...] = (".",)
    """Relative log paths resolve against the working directory, then the scenario's folder."""
    source: str = "<flags>"
    decision: dict[str, Any] = field(default_factory=dict)
    """compare, gates, on_inconclusive, segment_by, critical_segments: checked plain data
    (see :mod:`replay.settings`), stored with the run so reports re-decide it the same way."""
    noise_floor: int | None = None
    """``noise_floor.sample``: how many of the sampled requests production answers a second
    time (arm ``noise``), to measure how much production differs from itself."""
    embeddings: Embeddings | None = None
    judge: Judge | None = None
    session_key: str = "session_id"
    """``session``: the metadata key naming the conversation a record belongs to."""
    sessions: str = "open_loop"
    """``sessions``: ``open_loop`` (each turn with its logged history) or ``closed_loop`` (the
    candidate's own previous turns fed back; see :mod:`replay.conversations`)."""
    redact: Redaction | None = None
    """``redact``: what :mod:`replay.privacy` replaces by placeholders before anything is stored
    (and, with ``before_send``, sent); None: nothing."""

    def snapshot(self) -> dict[str, Any]:
        """The scenario as stored with a run: enough to resume it, and no secret. An absent
        ``embeddings``, ``judge`` or ``log_mapping`` (or an arm's ``transform``) is left out, so a scenario
        without one keeps the digest it had."""
        snapshot = asdict(self)
        snapshot["sample"] = self.sample.snapshot()  # new sampling keys only when set: old digests hold
        for key in ("embeddings", "judge", "log_mapping", "redact"):
            if snapshot[key] is None:
                del snapshot[key]
        for key, default in (("session_key", "session_id"), ("sessions", "open_loop")):
            if snapshot[key] == default:  # runs that leave them out keep their digests
                del snapshot[key]
        arms = (snapshot["candidate"], snapshot["production"], (snapshot.get("embeddings") or {}).get("endpoint"),
                (snapshot.get("judge") or {}).get("arm"))
        for arm in arms:  # likewise an absent transform: runs without one keep their digests
            if arm is not None and arm.get("transform") is None:
                arm.pop("transform", None)
        return snapshot

    def without_streaming(self) -> "Scenario":
        production = replace(self.production, stream=False) if self.production else None
        return replace(self, candidate=replace(self.candidate, stream=False), production=production)

    def segment_keys(self) -> dict[str, str]:
        """Metadata keys the decision segments by, each with the scenario key naming it."""
        return segment_keys(self.decision)

    @property
    def max_record_bytes(self) -> int:
        return int(self.max_record_mb * 2**20)

    def digest(self) -> str:
        blob = json.dumps(self.snapshot(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# --- where the scenario's numbers must lie (checked by replay.scenario_file, and by the flags) ---


@dataclass(frozen=True)
class NumberRange:
    """Where a number must lie. Every number is finite: NaN and infinities hang a run
    (a NaN rate never paces, a NaN timeout never fires)."""

    low: float
    high: float
    low_open: bool = False
    integer: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low_open:
            return f"{kind} above {_shown(self.low)} and at most {_shown(self.high)}"
        return f"{kind} from {_shown(self.low)} to {_shown(self.high)}"


def _shown(number: float) -> str:
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


INT64 = 2**63 - 1
RANGES: dict[str, NumberRange] = {
    "limits.concurrency": NumberRange(1, 10_000, integer=True),
    "limits.rpm": NumberRange(0.01, 1e9),
    "limits.tpm": NumberRange(1, 1e12),
    "limits.timeout_s": NumberRange(0, 86_400, low_open=True),
    "limits.max_attempts": NumberRange(1, 100, integer=True),
    "limits.max_response_mb": NumberRange(0, 1e6, low_open=True),
    "limits.budget_usd": NumberRange(0, 1e9, low_open=True),
    "sample.rate": NumberRange(0, 1, low_open=True),
    "sample.max": NumberRange(1, INT64, integer=True),
    "sample.seed": NumberRange(-INT64 - 1, INT64, integer=True),
    "sample.min_per_stratum": NumberRange(0, INT64, integer=True),
    "max_record_mb": NumberRange(0, 1024, low_open=True),
    "noise_floor.sample": NumberRange(1, INT64, integer=True),
    "embeddings.batch_size": NumberRange(1, 2048, integer=True),  # OpenAI takes at most 2,048 inputs a call
    "arm.default_max_tokens": NumberRange(1, 10_000_000, integer=True),
    "judge.sample": NumberRange(1, INT64, integer=True),
}
"""The range of every numeric scenario key; the matching ``replay run`` flags use the same."""


def segment_keys(decision: dict[str, Any]) -> dict[str, str]:
    """The metadata keys a decision segments by, each with the scenario key that names it,
    so a run can say before sending anything that no record has one."""
    keys: dict[str, str] = {}
    for key in decision.get("segment_by") or ():
        keys.setdefault(key, "segment_by")
    named = [("critical_segments", item) for item in decision.get("critical_segments") or ()]
    gates = decision.get("gates")
    if isinstance(gates, list):
        named += [(f"gates[{i}].segment", g["segment"]) for i, g in enumerate(gates) if isinstance(g, dict) and g.get("segment")]
    for where, segment in named:
        if isinstance(segment, str) and "=" in segment:
            keys.setdefault(segment.split("=", 1)[0].strip(), where)
    return keys
