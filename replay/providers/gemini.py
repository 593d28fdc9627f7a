"""Gemini through its OpenAI-compatible endpoint (``provider: gemini``): the OpenAI chat provider
with Gemini's differences.

- The URL: ``base_url`` may be left out: :data:`DEFAULT_BASE_URL` (requests go to
  ``{base_url}/chat/completions``). The key goes in ``Authorization: Bearer``, from ``api_key_env``
  (default ``GEMINI_API_KEY``).
- Parameters: the endpoint refuses some that OpenAI takes (``Invalid JSON payload received. Unknown
  name "seed": Cannot find field.``). Sent by default: ``temperature: 0`` and no ``seed``; a logged
  request's ``seed`` and ``prompt_cache_key`` are dropped and the drop recorded per request
  (``params.lossy``), unless the arm's ``params`` set them. Any other refused parameter gets the
  one-line hint naming the ``transform.patch`` that drops it.
- Errors come as Google's JSON list, ``[{"error": {"code": 429, "message": ..., "status":
  "RESOURCE_EXHAUSTED", "details": [...]}}]``. A 429 waits the ``retryDelay`` of its ``RetryInfo``
  when it has no ``retry-after`` header; a 429 whose ``QuotaFailure`` names a per-day quota stops
  the arm (nothing more is answered today), as does a 400 whose ``ErrorInfo`` reason is
  ``API_KEY_INVALID`` (Google answers a wrong key with 400, not 401).
"""

from __future__ import annotations

import json
import random
from typing import Any, Mapping

from replay.providers.base import ProviderError, register_provider
from replay.providers.openai_compat import OpenAICompatProvider
from replay.providers.openai_policy import parse_duration, plan_retry
from replay.retry import RetryPlan
from replay.wire.adapt import AdaptedBody, adapted

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai"
DEFAULT_API_KEY_ENV = "GEMINI_API_KEY"
DEFAULT_PARAMS: Mapping[str, Any] = {"temperature": 0}
"""As deterministic as the endpoint allows: it has no ``seed``."""
REFUSED = {
    "seed": "seed dropped: Gemini's OpenAI-compatible endpoint refuses it",
    "prompt_cache_key": "prompt_cache_key dropped: Gemini's OpenAI-compatible endpoint refuses it",
}
"""Logged OpenAI parameters the endpoint answers with 400 ``Unknown name``, dropped before sending."""
DAILY_QUOTA = "daily_quota_exhausted"
INVALID_KEY = "API_KEY_INVALID"


@register_provider("gemini")
class GeminiProvider(OpenAICompatProvider):
    default_params = DEFAULT_PARAMS
    default_api_key_env = DEFAULT_API_KEY_ENV
    default_base_url = DEFAULT_BASE_URL

    def build_body(self, request: dict[str, Any]) -> dict[str, Any]:
        body = super().build_body(request)
        dropped = [note for key, note in REFUSED.items() if key in body and key not in self.params]
        if not dropped:
            return body
        kept = {key: value for key, value in body.items() if key not in REFUSED or key in self.params}
        earlier = body if isinstance(body, AdaptedBody) else None
        return adapted(kept, [*(earlier.lossy if earlier else ()), *dropped], earlier.answer_tool if earlier else None)

    def http_error(self, status: int, headers: dict[str, str], text: str, latency_ms: float) -> ProviderError:
        error = super().http_error(status, headers, text, latency_ms)
        details = _details(text)
        if any(detail.get("reason") == INVALID_KEY for detail in details):
            error.code = INVALID_KEY
        elif status == 429 and any("PerDay" in str(v.get("quotaId", "")) for v in _violations(details)):
            error.code = DAILY_QUOTA
        delay = next((detail.get("retryDelay") for detail in details if "retryDelay" in detail), None)
        seconds = parse_duration(str(delay).strip()) if delay is not None else None
        if seconds is not None and not {key.lower() for key in headers} & {"retry-after", "retry-after-ms"}:
            error.headers = {**error.headers, "retry-after": f"{seconds:g}"}
        return error

    def retry_plan(self, error: ProviderError, attempt: int, max_attempts: int, rng: random.Random) -> RetryPlan:
        if error.code in (INVALID_KEY, DAILY_QUOTA):
            return RetryPlan(retry=False, fatal=True)
        return plan_retry(
            attempt=attempt, max_attempts=max_attempts, status=error.status, error_code=error.code,
            headers=error.headers, transport_error=error.transport, rng=rng,
        )  # fmt: skip


def _details(text: str) -> list[dict[str, Any]]:
    """The ``details`` of a Google error body (a JSON list of one error, or the error alone)."""
    try:
        body = json.loads(text)
    except ValueError:
        return []
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [detail for detail in details if isinstance(detail, dict)] if isinstance(details, list) else []


def _violations(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [detail.get("violations") for detail in details if "QuotaFailure" in str(detail.get("@type", ""))]
    return [item for items in found if isinstance(items, list) for item in items if isinstance(item, dict)]
