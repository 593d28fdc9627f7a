"""Scenario files: strict YAML with every key checked, and flags layered on top.

Precedence: command-line flag, then the scenario file, then the defaults of
:mod:`replay.config`. The deciding keys (compare, gates, segments) are checked by
:mod:`replay.settings`, which is why this module, not ``replay.config``, loads scenarios.
Secrets never appear here: an arm names the environment variable holding its key.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import asdict, replace
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from replay.config import (BASELINE_MODES, EMBEDDINGS_BATCH_SIZE, INT64, PROMPT_MODES, RANGES, TRANSPORTS, Arm, Embeddings,
                           Judge, Limits, Scenario, Transform)
from replay.errors import InputError, ScenarioError
from replay.readers.base import DEFAULT_MAX_RECORD_MB
from replay.sampling import DEFAULT_MIN_PER_STRATUM, SampleSpec, resolve_moment
from replay.settings import check_decision

if TYPE_CHECKING:
    from replay.providers.base import ProviderFactory


# --- the schema: key -> (accepted types, description used in messages) ---------------


_NUM = (int, float)
_LIMIT_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "concurrency": ((int,), RANGES["limits.concurrency"].describe()),
    "rpm": (_NUM, RANGES["limits.rpm"].describe()),
    "tpm": (_NUM, RANGES["limits.tpm"].describe()),
    "timeout_s": (_NUM, RANGES["limits.timeout_s"].describe()),
    "max_attempts": ((int,), RANGES["limits.max_attempts"].describe()),
    "max_response_mb": (_NUM, RANGES["limits.max_response_mb"].describe()),
    "budget_usd": (_NUM, RANGES["limits.budget_usd"].describe()),
}
_ARM_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "base_url": ((str,), "a URL string"),
    "model": ((str,), "a model name"),
    "api_key_env": ((str,), "an environment variable name"),
    "params": ((dict,), "a mapping of request parameters"),
    "headers": ((dict,), "a mapping of header names to strings"),
    "stream": ((bool,), "true or false"),
    "transport": ((str,), "'native', 'aiohttp' or 'httpx'"),
    "limits": ((dict,), "a mapping of limits"),
    "provider": ((str,), "a provider name"),
    "default_max_tokens": ((int,), RANGES["arm.default_max_tokens"].describe()),
    "transform": ((dict,), "a mapping with system_prompt_file, mode, model_map, patch or hook"),
}
_TRANSFORM_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "system_prompt_file": ((str,), "a path to a text file"),
    "mode": ((str,), "'replace', 'prepend' or 'append'"),
    "model_map": ((dict,), "a mapping of logged model to the model sent"),
    "patch": ((list,), "a list of JSON Patch (RFC 6902) operations"),
    "hook": ((str,), "module:callable, such as mypkg.rewrite:request"),
}
_EMBEDDINGS_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    **{key: _ARM_KEYS[key] for key in ("base_url", "model", "api_key_env", "headers", "transport", "limits", "provider")},
    "batch_size": ((int,), RANGES["embeddings.batch_size"].describe()),
}
_JUDGE_ONLY_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "rubric": ((str,), "the rubric's text"),
    "rubric_file": ((str,), "a path to a text file"),
    "prompt_file": ((str,), "a path to a prompt template"),
    "both_orders": ((bool,), "true or false"),
    "sample": ((int,), RANGES["judge.sample"].describe()),
    "allow_self_judge": ((bool,), "true or false"),
}
_JUDGE_KEYS = {**{key: kind for key, kind in _ARM_KEYS.items() if key != "transform"}, **_JUDGE_ONLY_KEYS}  # a judge sends its own prompt
_SAMPLE_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "rate": (_NUM, RANGES["sample.rate"].describe()),
    "max": ((int,), "a positive integer"),
    "seed": ((int,), "an integer"),
    "since": ((str, date), "an ISO 8601 time or a span before now such as 7d"),
    "until": ((str, date), "an ISO 8601 time or a span before now such as 12h"),
    "stratify_by": ((str, list), "a metadata key, hour_of_day, weekday, or a list of them"),
    "min_per_stratum": ((int,), RANGES["sample.min_per_stratum"].describe()),
    "dedupe": ((bool,), "true or false"),
}
_TOP_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string"),
    "logs": ((str, list, dict), "a path, a glob, a list of them or {input, output, error} (a Batch's files)"),
    "format": ((str,), "a log format name"),
    "mapping": ((dict,), "a mapping of target: source field (format csv or jsonl)"),
    "max_record_mb": (_NUM, RANGES["max_record_mb"].describe()),
    "sample": ((dict,), "a mapping with rate, max, seed, since, until, stratify_by, min_per_stratum and dedupe"),
    "baseline": ((str,), "'logged' or 'fresh'"),
    "production": ((dict,), "an endpoint mapping"),
    "candidate": ((dict,), "an endpoint mapping"),
    "limits": ((dict,), "a mapping of limits"),
    "prices": ((dict,), "a mapping of model to {input, output} USD per million tokens"),
    "compare": ((dict,), "a mapping of comparison settings"),
    "gates": ((list, str), "a list of gates or 'default'"),
    "on_inconclusive": ((str,), "'fail' or 'pass'"),
    "segment_by": ((str, list), "a metadata key or a list of them"),
    "critical_segments": ((list,), "a list of segments"),
    "noise_floor": ((dict,), "a mapping such as {sample: 100}"),
    "embeddings": ((dict,), "an embeddings endpoint mapping (base_url, model, api_key_env)"),
    "judge": ((dict,), "an endpoint mapping with the judge's settings"),
    "session": ((str,), "the metadata key naming a record's conversation (default session_id)"),
    "sessions": ((str,), "'open_loop' or 'closed_loop'"),
    "redact": ((bool, dict), "true, or a mapping with rules, patterns and before_send"),
}
_NOISE_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "sample": ((int,), RANGES["noise_floor.sample"].describe()),
}


class _Checker:
    """Validates one mapping at a time, naming the file and the dotted key in errors."""

    def __init__(self, source: str, search_dirs: tuple[str, ...] = (".",)) -> None:
        self.source = source
        self.search_dirs = search_dirs

    def fail(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {key}: {message}")

    def mapping(
        self, data: Any, prefix: str, schema: dict[str, tuple[tuple[type, ...], str]], section: str | None = None
    ) -> dict[str, Any]:
        """``section`` names the :data:`RANGES` entries of the keys (``limits`` for ``candidate.limits.``)."""
        if not isinstance(data, dict):
            raise self.fail(prefix.rstrip(".") or "(top level)", "expected a mapping")
        section = prefix if section is None else section
        for key, value in data.items():
            dotted = f"{prefix}{key}"
            if key not in schema:
                hint = difflib.get_close_matches(str(key), list(schema), n=1)
                suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
                raise self.fail(dotted, f"unknown key{suggestion}")
            kinds, description = schema[key]
            if value is None:
                continue
            if isinstance(value, bool) and bool not in kinds:
                raise self.fail(dotted, f"expected {description}, got {_got(value)}")
            if not isinstance(value, kinds):
                raise self.fail(dotted, f"expected {description}, got {_got(value)}")
            limits = RANGES.get(f"{section}{key}")
            if limits is not None and not limits.accepts(value):
                raise self.fail(dotted, f"expected {limits.describe()}, got {_got(value)}")
        return {key: value for key, value in data.items() if value is not None}

    def finite(self, data: Any, key: str = "") -> None:
        """Every number anywhere (params, prices, gates, inline schemas) finite and in 64-bit
        range: NaN and infinities hang a run, and the JSON sent cannot carry them."""
        stack: list[tuple[str, Any]] = [(key, data)]
        while stack:
            where, value = stack.pop()
            if isinstance(value, dict):  # pushed in reverse: the first bad number in the file is named
                stack.extend(reversed([(f"{where}.{k}" if where else str(k), v) for k, v in value.items()]))
            elif isinstance(value, list):
                stack.extend(reversed([(f"{where}[{i}]", v) for i, v in enumerate(value)]))
            elif isinstance(value, float) and not math.isfinite(value):
                raise self.fail(where, f"expected a finite number, got {value!r}")
            elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 - 1 <= value <= INT64:
                raise self.fail(where, f"expected a number within 64-bit range, got {_shortened(value)}")


def _got(value: Any) -> str:
    """The user's value in a message, at a readable length."""
    text = _shortened(value) if isinstance(value, int) and not isinstance(value, bool) else repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _shortened(value: int) -> str:
    text = str(value) if value.bit_length() < 10_000 else "a number of thousands of digits"
    return text if len(text) <= 24 else f"{text[:10]}...{text[-4:]} ({len(text)} digits)"


def load_scenario_data(path: str) -> dict[str, Any]:
    """A scenario or gates file as plain data (strict YAML: see :mod:`replay.yamlfile`)."""
    from replay.yamlfile import YamlError, load_yaml_file

    try:
        data = load_yaml_file(path)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except YamlError as exc:
        where = f"{path}:{exc.line}" if exc.line else path
        raise ScenarioError(f"{where}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (``candidate.model``, ``limits.rpm``) on a copy of ``data``."""
    merged: dict[str, Any] = json.loads(json.dumps(data, default=str))
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = merged
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[leaf] = value
    return merged


def build_scenario(
    data: dict[str, Any], source: str = "<flags>", search_dirs: tuple[str, ...] = (".",)
) -> Scenario:
    check = _Checker(source, search_dirs)
    check.finite(data)
    top = check.mapping(data, "", _TOP_KEYS)
    if "candidate" not in top:
        raise check.fail("candidate", "missing required key (or pass --candidate-url and --candidate-model)")
    if "logs" not in top:
        raise check.fail("logs", "missing required key (or pass --logs)")
    logs = top["logs"]
    logs = (logs,) if isinstance(logs, str) else _log_parts(check, logs) if isinstance(logs, dict) else tuple(logs)
    if not logs or not all(isinstance(item, str) for item in logs):
        raise check.fail("logs", "expected a path, a glob or a list of them")

    limits_data = check.mapping(top.get("limits", {}), "limits.", _LIMIT_KEYS)
    budget = limits_data.pop("budget_usd", None)
    limits = _limits(limits_data, Limits())

    baseline = top.get("baseline", "logged")
    if baseline not in BASELINE_MODES:
        raise check.fail("baseline", f"expected 'logged' or 'fresh', got {baseline!r}")
    candidate = _arm(check, top["candidate"], "candidate.", limits)
    production = _arm(check, top["production"], "production.", limits) if "production" in top else None
    if baseline == "fresh" and production is None:
        raise check.fail("production", "required when baseline is 'fresh'")

    sample = _sample(check, top.get("sample", {}))
    noise_floor = _noise_floor(check, top.get("noise_floor"), production)
    prices = _prices(check, top.get("prices", {}))
    name = top.get("name") or os.path.splitext(os.path.basename(source))[0] or "adhoc"
    decision = check_decision(top, check.fail, search_dirs)
    check.finite((decision.get("compare") or {}).get("schema"), "compare.schema")  # read from its own file
    embeddings = _embeddings(check, top["embeddings"], limits) if "embeddings" in top else None
    if embeddings is None:
        _refuse_semantic_gates(check, top.get("gates"))
    judge = _judge(check, top["judge"], limits, search_dirs, [("candidate", candidate), ("production", production)]) \
        if "judge" in top else None  # fmt: skip
    if judge is None:
        _no_judge_gates(check, decision.get("gates"))
    session_key, sessions = _sessions(check, top)
    return Scenario(
        name=name,
        logs=logs,
        candidate=candidate,
        sample=sample,
        baseline=baseline,
        production=production,
        budget_usd=budget,
        prices=prices,
        log_format=_log_format(check, top),
        log_mapping=top.get("mapping"),
        max_record_mb=float(top.get("max_record_mb", DEFAULT_MAX_RECORD_MB)),
        search_dirs=search_dirs,
        source=source,
        decision=decision,
        noise_floor=noise_floor,
        embeddings=embeddings,
        judge=judge,
        session_key=session_key,
        sessions=sessions,
        redact=_redact(check, top.get("redact")),
    )


def _sessions(check: _Checker, top: dict[str, Any]) -> tuple[str, str]:
    from replay.conversations import DEFAULT_SESSION_KEY, OPEN_LOOP, SESSION_MODES

    key = top.get("session") or DEFAULT_SESSION_KEY
    if not key.strip():
        raise check.fail("session", "expected a metadata key, got an empty string")
    mode = top.get("sessions") or OPEN_LOOP
    if mode not in SESSION_MODES:
        hint = difflib.get_close_matches(mode, SESSION_MODES, n=1)
        raise check.fail("sessions", f"expected 'open_loop' or 'closed_loop', got {mode!r}"
                                     + (f" (did you mean '{hint[0]}'?)" if hint else ""))  # fmt: skip
    return key, mode


def _redact(check: _Checker, data: Any) -> Any:
    """``redact: true`` or ``{rules, patterns, before_send}`` (:func:`replay.privacy.parse_redaction`)."""
    if data is None:
        return None
    from replay.privacy import RedactionError, parse_redaction

    try:
        return parse_redaction(data)
    except RedactionError as exc:
        raise check.fail(exc.key, str(exc)) from None


def _noise_floor(check: _Checker, data: Any, production: Arm | None) -> int | None:
    if data is None:
        return None
    noise = check.mapping(data, "noise_floor.", _NOISE_KEYS)
    if "sample" not in noise:
        raise check.fail("noise_floor.sample", "missing required key: how many requests production answers twice")
    if production is None:
        raise check.fail("noise_floor", "needs a 'production' endpoint to ask a second time")
    return int(noise["sample"])


def _limits(data: dict[str, Any], base: Limits) -> Limits:
    merged = {**asdict(base), **data}
    merged["concurrency"] = int(merged["concurrency"])
    merged["max_attempts"] = int(merged["max_attempts"])
    return Limits(**merged)


def _arm(check: _Checker, data: Any, prefix: str, limits: Limits) -> Arm:
    from replay.providers.transports.base import check_header

    arm = check.mapping(data, prefix, _ARM_KEYS)
    if "base_url" not in arm and "provider" in arm:  # a provider may know its endpoint (Gemini's)
        default = _provider(check, arm["provider"], prefix).default_base_url
        if default:
            arm["base_url"] = default
    for required in ("base_url", "model"):
        if required not in arm:
            raise check.fail(f"{prefix}{required}", "missing required key")
    if not arm["base_url"].startswith(("http://", "https://")):
        raise check.fail(f"{prefix}base_url", f"expected an http(s) URL, got {arm['base_url']!r}")
    try:
        urlsplit(arm["base_url"]).port  # noqa: B018  raises on a port that is not a number in 0-65535
    except ValueError as exc:
        raise check.fail(f"{prefix}base_url", f"{exc} in {arm['base_url']!r}") from None
    for name, value in arm.get("headers", {}).items():
        if not isinstance(value, str):
            raise check.fail(f"{prefix}headers.{name}", "expected a string")
        try:
            check_header(name, value)
        except ValueError as exc:
            raise check.fail(f"{prefix}headers.{name}", str(exc)) from None
        if name.lower() == "authorization" and "${" not in value:
            raise check.fail(
                f"{prefix}headers.{name}",
                "write secrets as ${ENV_VAR} (or use api_key_env), never in the file",
            )
    arm_limits = check.mapping(arm.pop("limits", {}), f"{prefix}limits.", _LIMIT_KEYS, section="limits.")
    if "budget_usd" in arm_limits:
        raise check.fail(f"{prefix}limits.budget_usd", "the budget is for the whole run: set it under the top-level limits")
    if arm.get("transport", "native") not in TRANSPORTS:
        expected = ", ".join(f"'{name}'" for name in TRANSPORTS)
        raise check.fail(f"{prefix}transport", f"expected one of {expected}, got {arm['transport']!r}")
    if "default_max_tokens" in arm and not RANGES["arm.default_max_tokens"].accepts(arm["default_max_tokens"]):
        raise check.fail(f"{prefix}default_max_tokens", f"expected {RANGES['arm.default_max_tokens'].describe()},"
                                                          f" got {_got(arm['default_max_tokens'])}")
    provider = _provider(check, arm.get("provider", "openai"), prefix)
    transform = _transform(check, arm["transform"], f"{prefix}transform.") if "transform" in arm else None
    params = {**provider.default_params, **arm.get("params", {})}
    return Arm(
        base_url=arm["base_url"].rstrip("/"),
        model=arm["model"],
        api_key_env=arm.get("api_key_env"),
        params=params,
        headers=dict(arm.get("headers", {})),
        stream=arm.get("stream", True),
        transport=arm.get("transport", "native"),
        limits=_limits(arm_limits, limits),
        provider=arm.get("provider", "openai"),
        default_max_tokens=arm.get("default_max_tokens"),
        transform=transform,
    )


def _judge(check: _Checker, data: Any, limits: Limits, search_dirs: tuple[str, ...],
           arms: list[tuple[str, Arm | None]]) -> Judge:  # fmt: skip
    """The ``judge:`` endpoint, checked like an arm, and what it is asked (files read now, stored)."""
    from replay.judge import check_template
    from replay.judge.family import same_model

    settings = check.mapping(data, "judge.", _JUDGE_KEYS)
    own = {key: settings.pop(key) for key in list(settings) if key in _JUDGE_ONLY_KEYS}
    settings.setdefault("stream", False)  # a verdict needs no first token early
    arm = _arm(check, settings, "judge.", limits)
    if "rubric" in own and "rubric_file" in own:
        raise check.fail("judge.rubric_file", "give rubric or rubric_file, not both")
    rubric = own.get("rubric")
    if "rubric_file" in own:
        rubric = _text_file(check, "judge.rubric_file", own["rubric_file"], search_dirs)
    prompt = _text_file(check, "judge.prompt_file", own["prompt_file"], search_dirs) if "prompt_file" in own else None
    if prompt is not None and check_template(prompt):
        raise check.fail("judge.prompt_file", f"{own['prompt_file']}: {check_template(prompt)}")
    allow = own.get("allow_self_judge", False)
    for name, other in arms:
        if other is not None and same_model(arm.model, other.model) and not allow:
            raise check.fail("judge.model", f"'{arm.model}' is also the {name}'s model, and a model judging its own"
                             " answers favours them: judge with another model, or set judge.allow_self_judge: true")  # fmt: skip
    return Judge(arm=arm, rubric=rubric, prompt=prompt, both_orders=own.get("both_orders", True),
                 sample=own.get("sample"), allow_self_judge=allow)  # fmt: skip


def _no_judge_gates(check: _Checker, gates: Any) -> None:
    """A gate on the judge's metric in a scenario without a judge could never be decided."""
    for index, gate in enumerate(gates if isinstance(gates, list) else ()):
        if isinstance(gate, dict) and gate.get("metric") == "judge_win_rate":
            raise check.fail(f"gates[{index}].metric", "judge_win_rate needs a judge: add a 'judge:' section")


def _text_file(check: _Checker, key: str, name: str, search_dirs: tuple[str, ...]) -> str:
    path = next((os.path.join(d, name) for d in search_dirs if os.path.isfile(os.path.join(d, name))), None)
    if path is None:
        raise check.fail(key, f"no such file {name!r}")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise check.fail(key, f"{name}: cannot read it as UTF-8 text ({exc})") from None
    if not text.strip():
        raise check.fail(key, f"{name} is empty")
    return text


def _transform(check: _Checker, data: Any, prefix: str) -> Transform | None:
    """Every part checked now (the prompt file read, the patch parsed, the hook imported): nothing is sent first."""
    from replay import transforms

    spec = check.mapping(data, prefix, _TRANSFORM_KEYS)
    mode = spec.get("mode", "replace")
    if mode not in PROMPT_MODES:
        raise check.fail(f"{prefix}mode", f"expected 'replace', 'prepend' or 'append', got {_got(mode)}")
    if "mode" in spec and "system_prompt_file" not in spec:
        raise check.fail(f"{prefix}mode", "goes with system_prompt_file")
    for logged, sent in spec.get("model_map", {}).items():
        if not isinstance(sent, str) or not sent:
            raise check.fail(f"{prefix}model_map.{logged}", f"expected a model name, got {_got(sent)}")
    try:
        prompt = spec.get("system_prompt_file") and transforms.read_system_prompt(spec["system_prompt_file"], mode, check.search_dirs)
        patch = transforms.check_patch(spec.get("patch", []))
        if "hook" in spec:
            transforms.load_hook(spec["hook"], check.search_dirs)
    except transforms.SpecError as exc:
        raise check.fail(f"{prefix}{exc.key}", str(exc)) from None
    if not (prompt or spec.get("model_map") or patch or "hook" in spec):
        return None
    return Transform(prompt or None, {str(k): v for k, v in spec.get("model_map", {}).items()}, patch, spec.get("hook"))


def _provider(check: _Checker, name: str, prefix: str) -> ProviderFactory:
    from replay.providers import PROVIDERS

    if name not in PROVIDERS:
        known = ", ".join(f"'{known}'" for known in sorted(PROVIDERS))
        raise check.fail(f"{prefix}provider", f"expected one of {known}, got {name!r}")
    return PROVIDERS[name]


def _embeddings(check: _Checker, data: Any, limits: Limits) -> Embeddings:
    """An endpoint checked as an arm is (URL, headers, limits, transport), with its own provider registry."""
    from replay.providers import EMBEDDING_PROVIDERS

    mapping = check.mapping(data, "embeddings.", _EMBEDDINGS_KEYS)
    batch_size = int(mapping.pop("batch_size", EMBEDDINGS_BATCH_SIZE))
    provider = mapping.pop("provider", "openai")
    if provider not in EMBEDDING_PROVIDERS:
        known = ", ".join(f"'{name}'" for name in sorted(EMBEDDING_PROVIDERS))
        raise check.fail("embeddings.provider", f"expected one of {known}, got {provider!r}")
    endpoint = _arm(check, mapping, "embeddings.", limits)
    return Embeddings(replace(endpoint, params={}, stream=False, provider=provider), batch_size)


def _refuse_semantic_gates(check: _Checker, gates: Any) -> None:
    """A gate on semantic similarity without an endpoint to embed with could never be decided."""
    for i, gate in enumerate(gates if isinstance(gates, list) else ()):
        if isinstance(gate, dict) and str(gate.get("metric", "")).startswith("semantic_similarity"):
            raise check.fail(f"gates[{i}].metric", f"{gate['metric']} needs an embeddings endpoint: add the 'embeddings' key")


def _sample(check: _Checker, data: Any) -> SampleSpec:
    sample = check.mapping(data, "sample.", _SAMPLE_KEYS)
    rate = float(sample.get("rate", 1.0))
    if not 0 < rate <= 1:
        raise check.fail("sample.rate", f"expected a number in (0, 1], got {rate!r}")
    now = datetime.now(timezone.utc)
    since, until = (_moment(check, sample, key, now) for key in ("since", "until"))
    if since and until and since >= until:
        raise check.fail("sample.until", f"expected a time after sample.since ({since}), got {until}")
    if "min_per_stratum" in sample and "stratify_by" not in sample:
        raise check.fail("sample.min_per_stratum", "needs sample.stratify_by (the strata it is the floor of)")
    return SampleSpec(rate=rate, max=sample.get("max"), seed=int(sample.get("seed", 0)), since=since, until=until,
                      stratify_by=_strata(check, sample.get("stratify_by")),
                      min_per_stratum=int(sample.get("min_per_stratum", DEFAULT_MIN_PER_STRATUM)),
                      dedupe=bool(sample.get("dedupe", False)))  # fmt: skip


def _moment(check: _Checker, sample: dict[str, Any], key: str, now: datetime) -> str | None:
    """``sample.since`` / ``sample.until`` as ISO 8601 UTC, a span such as ``7d`` counted back from
    now: resolved once, here, so that the run stores (and a resume reuses) the same window."""
    value = sample.get(key)
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, datetime):
        value = value.isoformat()
    try:
        return resolve_moment(value, now)
    except ValueError as exc:
        raise check.fail(f"sample.{key}", str(exc)) from None


def _strata(check: _Checker, value: Any) -> tuple[str, ...]:
    keys = [value] if isinstance(value, str) else list(value or ())
    if isinstance(value, list) and not keys:
        raise check.fail("sample.stratify_by", "expected at least one key")
    for key in keys:
        if not isinstance(key, str) or not key.strip():
            raise check.fail("sample.stratify_by", f"expected metadata key names, hour_of_day or weekday, got {_got(key)}")
    if len(set(keys)) < len(keys):
        raise check.fail("sample.stratify_by", "a key is listed twice")
    return tuple(keys)


PRICE_KEYS = frozenset({"input", "output", "cache_write", "cache_read"})
"""What a ``prices`` entry may give, USD per million tokens (cache rates for prompt caching)."""


def _prices(check: _Checker, data: dict[str, Any]) -> dict[str, dict[str, float]]:
    prices: dict[str, dict[str, float]] = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or set(entry) - PRICE_KEYS or not entry:
            raise check.fail(f"prices.{model}", "expected {input: USD per 1M tokens, output: USD per 1M tokens}"
                                                " (and optionally cache_write, cache_read)")
        for side, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise check.fail(f"prices.{model}.{side}", f"expected a non-negative number, got {value!r}")
        prices[str(model)] = {side: float(value) for side, value in entry.items()}
    return prices


def _log_format(check: _Checker, top: dict[str, Any]) -> str:
    """``format``; with ``mapping``, the csv/jsonl reader it registers."""
    fmt = top.get("format", "auto")
    if "mapping" not in top:
        return str(fmt)
    from replay.readers.mapped import mapped_format

    try:
        return mapped_format(fmt, top["mapping"])
    except InputError as exc:
        key, _, message = str(exc).partition(": ")
        raise check.fail(key, message) from None


LOG_PARTS = ("input", "output", "error")
"""``logs: {input: batch_in.jsonl, output: batch_out.jsonl, error: batch_err.jsonl}``: a Batch's files,
read together (the reader tells them apart by content and joins them by ``custom_id``)."""


def _log_parts(check: _Checker, parts: dict[str, Any]) -> tuple[str, ...]:
    for key, value in parts.items():
        if key not in LOG_PARTS:
            raise check.fail(f"logs.{key}", f"unknown key (expected {', '.join(LOG_PARTS)})")
        if not isinstance(value, str) or not value:
            raise check.fail(f"logs.{key}", "expected a path")
    if "input" not in parts:
        raise check.fail("logs.input", "missing required key (the Batch input file)")
    return tuple(parts[key] for key in LOG_PARTS if key in parts)


def load_scenario(path: str | None, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read a scenario file (or none, for ad-hoc runs) and apply flag overrides."""
    overrides = dict(overrides or {})
    cwd = os.getcwd()
    if path is None:
        data: dict[str, Any] = {}
        search_dirs: tuple[str, ...]
        source, search_dirs = "<flags>", (cwd,)
    else:
        data = load_scenario_data(path)
        source, search_dirs = path, (cwd, os.path.dirname(os.path.abspath(path)))
    if overrides.get("logs") is not None:
        overrides["logs"] = [os.path.abspath(p) for p in overrides["logs"]]
    if overrides.get("redact") and isinstance(data.get("redact"), dict):
        del overrides["redact"]  # --redact turns redaction on; the scenario's own choice of rules stands
    return build_scenario(apply_overrides(data, overrides), source=source, search_dirs=search_dirs)


def scenario_from_snapshot(snapshot: dict[str, Any]) -> Scenario:
    """Rebuild a stored scenario for ``--resume``."""
    snap = dict(snapshot)

    def arm(data: dict[str, Any] | None) -> Arm | None:
        if data is None:
            return None
        transform = Transform.from_snapshot(data["transform"]) if data.get("transform") else None
        return Arm(**{**data, "limits": Limits(**data["limits"]), "transform": transform})

    snap["candidate"] = arm(snap["candidate"])
    snap["production"] = arm(snap.get("production"))
    if snap.get("embeddings"):
        embeddings = snap["embeddings"]
        snap["embeddings"] = Embeddings(arm(embeddings["endpoint"]), embeddings["batch_size"])  # type: ignore[arg-type]
    snap["sample"] = SampleSpec.from_snapshot(snap["sample"])
    snap["logs"] = tuple(snap["logs"])
    if snap.get("log_mapping"):
        from replay.readers.mapped import mapped_format

        snap["log_format"] = mapped_format(snap["log_format"].split("+", 1)[0], snap["log_mapping"])
    snap["search_dirs"] = tuple(snap["search_dirs"])
    if snap.get("judge") is not None:
        snap["judge"] = Judge(**{**snap["judge"], "arm": arm(snap["judge"]["arm"])})
    if snap.get("redact") is not None:
        from replay.privacy import Redaction

        snap["redact"] = Redaction.from_snapshot(snap["redact"])
    return Scenario(**snap)


def scenario_keys() -> frozenset[str]:
    """The top-level keys a scenario file may hold."""
    return frozenset(_TOP_KEYS)
