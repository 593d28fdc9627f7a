"""``openai-batch``: an OpenAI Batch input file joined with its output (and error) file by ``custom_id``.

Input line: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``.
Output and error lines: ``{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null,
"error": {"code", "message"} | null}``, in any order. The output's body is the logged answer, its
``status_code`` the status; a failure is kept with its error and no answer. Batch files carry no
latency and no timestamp. Only ``/v1/chat/completions`` requests are read; others are skipped.

The output and error files are indexed (each ``custom_id``'s hash and the line's offset, about
16 bytes an answer), then the input is streamed and each answer read back at its offset.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import orjson

from replay.errors import InputError, LogFormatError
from replay.readers import records as checks
from replay.readers.base import DEFAULT_MAX_RECORD_BYTES, Skipped, register_reader
from replay.readers.ids import HashIndex
from replay.readers.objects import read_objects, record
from replay.readers.shadow import open_log
from replay.types import Location

CHAT_URL = "/v1/chat/completions"


def _is_input(obj: Any) -> bool:
    return isinstance(obj, dict) and ("body" in obj or "method" in obj)


def batch_role(path: str, is_request: Callable[[Any], bool]) -> str:
    """``input`` (requests) or ``output`` (answers): what a batch file's first object is."""
    for item in read_objects(path, DEFAULT_MAX_RECORD_BYTES):
        if isinstance(item, LogFormatError):
            return "input"  # reported where it is read
        return "input" if is_request(item[1]) else "output"
    return "input"


_OFFSET_BITS = 40
"""An answer's place packed in one int: the file's number above its byte offset (files up to 1 TB)."""


def index_answers(paths: list[str], cap: int) -> HashIndex:
    """Each answer line's file and byte offset, by ``custom_id`` (the file's number in ``paths``
    above the offset); in bounded memory per id (:class:`replay.readers.ids.HashIndex`)."""
    index = HashIndex()
    for number, path in enumerate(paths):
        with open_log(path) as handle:
            offset = 0
            for raw in iter(lambda: handle.readline(cap + 1), b""):
                start, offset = offset, offset + len(raw)
                key = raw.find(b'"custom_id"')
                if key < 0:
                    continue
                try:
                    custom_id = orjson.loads(raw).get("custom_id")
                except (orjson.JSONDecodeError, AttributeError):
                    continue  # not an answer line: the join reports the input without its answer
                if isinstance(custom_id, str):
                    if start >> _OFFSET_BITS or number >> (63 - _OFFSET_BITS):
                        raise InputError(f"{path}: an answer file over 1 TB (or over 8 million of them) cannot be indexed")
                    index.add(custom_id, number << _OFFSET_BITS | start)
    return index.freeze()


def answer_for(custom_id: str, index: HashIndex, paths: list[str], handles: dict[str, Any], cap: int) -> dict[str, Any] | None:
    """The first answer line with this ``custom_id`` (files in order), read back at its offset;
    None when there is none. Entries of another id sharing its hash are read and passed over."""
    for place in index.candidates(custom_id):
        path, offset = paths[place >> _OFFSET_BITS], place & ((1 << _OFFSET_BITS) - 1)
        handle = handles.get(path)
        if handle is None:
            handle = handles[path] = open_log(path)
        handle.seek(offset)
        obj = orjson.loads(handle.readline(cap + 1))
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{_line_at(handle, offset)}: expected a JSON object")
        if obj.get("custom_id") == custom_id:
            return obj
    return None


def _line_at(handle: Any, offset: int) -> int:
    """The number of the line starting at ``offset`` (for a message: read from the start)."""
    handle.seek(0)
    return int(handle.read(offset).count(b"\n")) + 1


def _convert(obj: dict[str, Any], location: Location, answer: dict[str, Any] | None) -> Any:
    if obj.get("url", CHAT_URL) != CHAT_URL:
        return Skipped(location, f"not a chat completion ({checks.shown(obj.get('url'))})")
    body = obj.get("body")
    if not isinstance(body, dict):
        raise ValueError("'body' is required and must be a chat-completions request object")
    response, status, error, metadata = None, None, None, {}
    if answer is not None:
        wire = answer.get("response")
        if wire is not None and not isinstance(wire, dict):
            raise ValueError("'response' in the output file must be an object")
        if wire:
            status = wire.get("status_code")
            payload = wire.get("body")
            if isinstance(payload, dict) and "error" in payload and "choices" not in payload:
                error = payload.get("error")
            elif payload is not None:
                response = payload
            metadata["request_id"] = wire.get("request_id")
        if answer.get("error") is not None:
            error = answer["error"]
        metadata["batch_request_id"] = answer.get("id")
    else:
        metadata["batch_answer"] = "missing"
    if isinstance(body.get("metadata"), dict):
        metadata.update({key: value for key, value in body["metadata"].items() if key not in metadata})
    return record(location, id=obj.get("custom_id"), id_field="custom_id", request=_messages_request(body),
                  response=response, status=status, error=error, metadata=metadata)  # fmt: skip


def _messages_request(body: dict[str, Any]) -> dict[str, Any]:
    try:
        return checks.request(body)
    except ValueError as exc:
        raise ValueError(str(exc).replace("'request", "'body", 1)) from None


def read_group(paths: list[str], max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[tuple[str, Iterator[Any]]]:
    """The input files' records, each joined with its answer from the output and error files among ``paths``."""
    return join_batch(paths, max_record_bytes, _is_input, _check_input, _convert,
                      "an OpenAI Batch output file without its input file (give both: logs: {input: ..., output: ...})")  # fmt: skip


def _check_input(obj: Any) -> None:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if not _is_input(obj):
        raise ValueError("an output line in the input file (expected 'custom_id', 'method', 'url', 'body')")


Convert = Callable[[dict[str, Any], Location, "dict[str, Any] | None"], Any]


def join_batch(paths: list[str], cap: int, is_request: Callable[[Any], bool], check: Callable[[Any], None],
               convert: Convert, missing: str) -> Iterator[tuple[str, Iterator[Any]]]:  # fmt: skip
    """A batch's request files, each record joined by ``custom_id`` with its answer from the
    answer files among ``paths`` (indexed by offset first: memory grows with the ids only).
    ``check`` raises ValueError for a line that is not a request; ``missing`` is the error
    when only answers are given."""
    requests: list[str] = []
    answers: list[str] = []
    for path in paths:
        (requests if batch_role(path, is_request) == "input" else answers).append(path)
    index = index_answers(answers, cap)
    if not requests:
        named = answers[0] if answers else "logs"
        yield named, iter([LogFormatError(Location(named), missing)])
        return
    handles: dict[str, Any] = {}
    try:
        for path in requests:
            yield path, _joined(path, index, answers, handles, cap, check, convert)
    finally:
        for handle in handles.values():
            handle.close()


def _joined(path: str, index: HashIndex, answers: list[str], handles: dict[str, Any], cap: int,
            check: Callable[[Any], None], convert: Convert) -> Iterator[Any]:  # fmt: skip
    for item in read_objects(path, cap):
        if isinstance(item, LogFormatError):
            yield item
            continue
        location, obj = item
        try:
            check(obj)
            custom_id = obj.get("custom_id")
            answer = answer_for(custom_id, index, answers, handles, cap) if isinstance(custom_id, str) else None
            yield convert(obj, location, answer)
        except ValueError as exc:
            yield LogFormatError(location, str(exc))


@register_reader("openai-batch")
def read_openai_batch(path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[Any]:
    """One Batch input file without answers (its output file not given)."""
    for _, items in read_group([path], max_record_bytes):
        yield from items


read_openai_batch.read_group = read_group  # type: ignore[attr-defined]
