"""Azure OpenAI (``provider: azure``): the OpenAI chat provider with Azure's differences.

- The URL: ``base_url`` is the deployment (``https://RES.openai.azure.com/openai/deployments/DEPLOYMENT``),
  or the portal's whole "Target URI" (``.../chat/completions?api-version=...``); a deployment URL
  without an ``api-version`` gets :data:`DEFAULT_API_VERSION`. The v1 API
  (``https://RES.openai.azure.com/openai/v1``) takes no ``api-version``, and the deployment as ``model``.
- The key goes in an ``api-key`` header (never ``Authorization``), from ``api_key_env``
  (default ``AZURE_OPENAI_API_KEY``); it is scrubbed from everything the endpoint sends back.
- Errors: ``{"error": {"code": "429", "message": "... Please retry after 6 seconds ..."}}``. A 429
  without ``retry-after`` headers waits what its message says; a 404 (a wrong resource or
  ``DeploymentNotFound``) stops the arm, since every request to that URL would meet it.
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from replay.providers.base import ProviderError, register_provider
from replay.providers.openai_compat import DEFAULT_MAX_RESPONSE_MB, OpenAICompatProvider
from replay.providers.openai_policy import plan_retry
from replay.retry import RetryPlan

if TYPE_CHECKING:
    from replay.config import Arm

DEFAULT_API_VERSION = "2024-10-21"
"""A generally available data-plane version, sent unless the URL names one: pin yours in ``base_url``."""
DEFAULT_API_KEY_ENV = "AZURE_OPENAI_API_KEY"
_RETRY_AFTER = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.I)


def chat_url(base_url: str) -> str:
    """The chat completions URL of a deployment (or of the v1 API), with its ``api-version``."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "/openai/deployments/" in path and "api-version" not in query:
        query["api-version"] = DEFAULT_API_VERSION
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


@register_provider("azure")
class AzureOpenAIProvider(OpenAICompatProvider):
    default_api_key_env = DEFAULT_API_KEY_ENV

    def __init__(self, *, base_url: str, model: str, params: dict[str, Any], api_key_env: str = DEFAULT_API_KEY_ENV,
                 headers: dict[str, str] | None = None, stream: bool = True, max_connections: int = 16,
                 transport: str = "native", httpx_transport: Any = None,
                 max_response_mb: float = DEFAULT_MAX_RESPONSE_MB) -> None:  # fmt: skip
        sent = {"api-key": "${%s}" % api_key_env, **(headers or {})}  # expanded and scrubbed as any ${VAR} header
        super().__init__(base_url=base_url, model=model, params=params, headers=sent, stream=stream,
                         max_connections=max_connections, transport=transport, httpx_transport=httpx_transport,
                         max_response_mb=max_response_mb)  # fmt: skip
        self.url = chat_url(base_url)

    @classmethod
    def from_arm(cls, name: str, arm: Arm) -> AzureOpenAIProvider:
        cls.check_arm(name, arm)
        return cls(
            base_url=arm.base_url, model=arm.model, params=arm.params, api_key_env=arm.api_key_env or DEFAULT_API_KEY_ENV,
            headers=arm.headers, stream=arm.stream, max_connections=arm.limits.concurrency, transport=arm.transport,
            max_response_mb=arm.limits.max_response_mb,
        )  # fmt: skip

    def retry_plan(self, error: ProviderError, attempt: int, max_attempts: int, rng: random.Random) -> RetryPlan:
        if error.status == 404:
            return RetryPlan(retry=False, fatal=True)
        headers = error.headers
        lowered = {key.lower() for key in headers}
        said = _RETRY_AFTER.search(error.message) if error.status == 429 else None
        if said and not lowered & {"retry-after", "retry-after-ms"}:
            headers = {**headers, "retry-after": said.group(1)}
        return plan_retry(
            attempt=attempt, max_attempts=max_attempts, status=error.status, error_code=error.code,
            headers=headers, transport_error=error.transport, rng=rng,
        )  # fmt: skip
