"""``anthropic-batch``: Anthropic Message Batches, the requests file joined with the results file by ``custom_id``.

Request line: ``{"custom_id", "params": {<a Messages request>}}`` (the ``requests`` array of the
create call, one a line). Result line: ``{"custom_id", "result": {"type": "succeeded", "message":
{...}} | {"type": "errored", "error": {...}} | {"type": "canceled"} | {"type": "expired"}}``, in any
order. Give both, as a folder or ``logs: {input: requests.jsonl, output: results.jsonl}``. The
Messages request is kept as it is (each arm's provider adapts it); results carry no latency.
"""

from __future__ import annotations

from typing import Any, Iterator

from replay.readers.base import DEFAULT_MAX_RECORD_BYTES, register_reader
from replay.readers.objects import record
from replay.readers.openai_batch import join_batch
from replay.types import Location


def _is_request(obj: Any) -> bool:
    return isinstance(obj, dict) and "params" in obj


def _convert(obj: dict[str, Any], location: Location, answer: dict[str, Any] | None) -> Any:
    params = obj.get("params")
    if not isinstance(params, dict):
        raise ValueError("'params' is required and must be a Messages request object")
    response, error, metadata = None, None, {}
    result = answer.get("result") if answer is not None else None
    if answer is not None and not isinstance(result, dict):
        raise ValueError("'result' in the results file must be an object")
    kind = result.get("type") if result else "missing"
    metadata["batch_result"] = kind
    if kind == "succeeded":
        response = result.get("message") if result else None
    elif kind == "errored":
        error = result.get("error") if result else None
    elif kind in ("canceled", "expired"):
        error = {"type": kind}
    if isinstance(params.get("metadata"), dict):
        metadata["user"] = params["metadata"].get("user_id")
    return record(location, id=obj.get("custom_id"), id_field="custom_id", request=params,
                  messages_field="params.messages", response=response, error=error, metadata=metadata)  # fmt: skip


def read_group(paths: list[str], max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[tuple[str, Iterator[Any]]]:
    return join_batch(paths, max_record_bytes, _is_request, _check_request, _convert,
                      "Message Batches results without the requests file"
                      " (give both: logs: {input: requests.jsonl, output: results.jsonl})")  # fmt: skip


def _check_request(obj: Any) -> None:
    if not _is_request(obj):
        raise ValueError("expected a request line ('custom_id', 'params')")


@register_reader("anthropic-batch")
def read_anthropic_batch(path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[Any]:
    """One requests file without results."""
    for _, items in read_group([path], max_record_bytes):
        yield from items


read_anthropic_batch.read_group = read_group  # type: ignore[attr-defined]
