"""``replay logs validate | inspect | convert``: check, describe and convert logs before a run."""

from __future__ import annotations

import json
from typing import Any

import click

from replay.cli.options import number_type
from replay.readers.base import DEFAULT_MAX_RECORD_MB

MAX_SHOWN = 20


@click.group(name="logs")
def logs_group() -> None:
    """Check, describe and convert logs."""


@logs_group.command(name="validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", default="auto", show_default=True, help="Log format (auto: detected per file).")
@click.option("--max-record-mb", type=number_type("max_record_mb"), default=DEFAULT_MAX_RECORD_MB, show_default=True,
              help="Longest line to read, in MB; a longer one is reported.")  # fmt: skip
@click.option("--mapping", "mapping", multiple=True, metavar="TARGET=FIELD",
              help="With --format csv or jsonl: a target and the field it comes from (repeatable).")
def validate_command(files: tuple[str, ...], fmt: str, max_record_mb: float, mapping: tuple[str, ...]) -> None:
    """Check that every line of FILES (files, globs or directories of *.jsonl) is a
    record the run can use, with unique ids: the request as an endpoint checks it
    (roles, content, parameter types) and the logged answer as the run reads it.

    Prints each bad line as PATH:LINE: reason (the first 20) and exits 2 if any, or if
    there is no record at all.

    \b
    Example:
      replay logs validate fixtures/logs/support.jsonl
    """
    from replay.errors import InputError
    from replay.readers import ReadStats, check_not_empty, iter_records, resolve_log_paths

    paths = resolve_log_paths(list(files))
    stats = ReadStats()

    def show(error: Exception) -> None:
        if stats.invalid <= MAX_SHOWN:
            click.echo(str(error), err=True)

    records = iter_records(paths, fmt=_with_mapping(fmt, mapping), skip_invalid=True, stats=stats, on_invalid=show,
                           max_record_bytes=int(max_record_mb * 2**20))  # fmt: skip
    for _ in records:
        pass
    if stats.invalid:
        raise InputError(f"{stats.invalid} invalid line(s), {stats.records} valid record(s)")
    check_not_empty(paths, stats)
    for path in stats.empty_files:
        click.echo(f"note: {path}: the log is empty (no records)", err=True)
    for line in skipped_notes(stats):
        click.echo(line, err=True)
    click.echo(f"ok: {stats.records} records in {len(paths)} file(s)")


def skipped_notes(stats: Any) -> list[str]:
    """One line per file that had entries that are not LLM requests: how many records were
    read from it, and what was skipped, by reason."""
    lines = []
    for path, reasons in stats.skipped.items():
        counts = ", ".join(f"{count:,} {_shown(reason)}" for reason, count in reasons.most_common())
        lines.append(f"note: {path}: {stats.per_file.get(path, 0):,} records read, skipped (not requests): {counts}")
    return lines


_FILES = click.argument("files", nargs=-1, required=True, type=click.Path())
_FORMAT = click.option("--format", "fmt", default="auto", show_default=True, help="Log format (auto: detected per file).")
_MAPPING = click.option("--mapping", "mapping", multiple=True, metavar="TARGET=FIELD",
                        help="With --format csv or jsonl: a target and the field it comes from (repeatable).")
_SKIP = click.option("--skip-invalid", is_flag=True, help="Skip malformed records (counted) instead of stopping.")


OTHER = "(other)"


def _with_mapping(fmt: str, pairs: tuple[str, ...]) -> str:
    """``--mapping id=request_id ...``: the csv/jsonl reader it registers (``fmt`` alone without any)."""
    if not pairs:
        return fmt
    from replay.errors import InputError
    from replay.readers.mapped import mapped_format

    mapping = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep:
            raise InputError(f"--mapping: expected TARGET=FIELD, got {pair!r}")
        mapping[target.strip()] = source.strip()
    return mapped_format(fmt, mapping)


def _shown(text: Any, limit: int = 80) -> str:
    from replay.reports.escape import clip, visible

    return visible(clip(str(text), limit))


def _counts(counter: Any, limit: int = 10) -> str:
    items = counter.most_common() if hasattr(counter, "most_common") else sorted(counter.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{_shown(key, 60)} {count:,}" for key, count in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


@logs_group.command(name="inspect")
@_FILES
@_FORMAT
@_MAPPING
@_SKIP
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect_command(files: tuple[str, ...], fmt: str, mapping: tuple[str, ...], skip_invalid: bool,
                    as_json: bool) -> None:  # fmt: skip
    """Describe FILES: records per file and format, models, date range, segments with
    counts, token totals, error share, records without a response, duplicate requests.

    \b
    Example:
      replay logs inspect fixtures/logs/litellm --json
    """
    from replay.readers import check_not_empty, resolve_log_paths
    from replay.readers.summary import summarize

    paths = resolve_log_paths(list(files))
    shown_invalid = []

    def show(error: Exception) -> None:
        shown_invalid.append(error)
        if len(shown_invalid) <= MAX_SHOWN:
            click.echo(str(error), err=True)

    summary = summarize(paths, fmt=_with_mapping(fmt, mapping), skip_invalid=skip_invalid, on_invalid=show)
    check_not_empty(paths, summary.stats)
    if as_json:
        click.echo(json.dumps(summary.as_json(), indent=2))
        return
    for line in _inspect_lines(summary.as_json()):
        click.echo(line)


def _inspect_lines(data: dict[str, Any]) -> list[str]:
    lines = ["files:"]
    for entry in data["files"]:
        parts = [f"{entry['records']:,} records"]
        if entry["invalid"]:
            parts.append(f"{entry['invalid']:,} invalid (skipped)")
        parts += [f"{count:,} skipped: {_shown(reason)}" for reason, count in entry["skipped"].items()]
        lines.append(f"  {entry['path']} ({entry['format']}): {', '.join(parts)}")
    first, last = data["date_range"]["first"], data["date_range"]["last"]
    lines += [
        f"records: {data['records']:,}",
        f"formats: {_counts(data['formats'])}",
        f"models: {_counts(data['models'])}",
        f"date range: {_shown(first)} to {_shown(last)}" if first else "date range: no timestamps",
    ]
    segments = {key: values for key, values in data["segments"].items() if OTHER not in values}
    if segments:
        lines.append("segments:")
        lines += [f"  {_shown(key, 40)}: {_counts(values)}" for key, values in segments.items()]
    many = [key for key in data["segments"] if key not in segments]
    if many:
        lines.append(f"metadata with too many values to segment by: {', '.join(_shown(key, 40) for key in many)}")
    lines += [
        f"tokens: {data['tokens']['prompt']:,} prompt, {data['tokens']['completion']:,} completion (logged answers)",
        f"errors: {data['errors']:,} ({data['error_share']:.1%})",
        f"without a response: {data['without_response']:,}",
        f"duplicate requests: {data['duplicate_requests']:,}",
    ]
    return lines


@logs_group.command(name="convert")
@_FILES
@_FORMAT
@_MAPPING
@_SKIP
@click.option("--to", "to", default="shadow", show_default=True, type=click.Choice(["shadow"]), help="Format to write.")
@click.option("-o", "--output", "output", required=True, help="File to write ('-': stdout).")
def convert_command(files: tuple[str, ...], fmt: str, mapping: tuple[str, ...], skip_invalid: bool, to: str,
                    output: str) -> None:  # fmt: skip
    """Write the records of FILES (any readable format) as a shadow log.

    \b
    Example:
      replay logs convert fixtures/logs/openai-batch --to shadow -o batch.jsonl
    """
    from replay.readers import ReadStats, check_not_empty, resolve_log_paths
    from replay.readers.convert import convert

    paths = resolve_log_paths(list(files))
    stats = ReadStats()

    def show(error: Exception) -> None:
        if stats.invalid <= MAX_SHOWN:
            click.echo(str(error), err=True)

    count = convert(paths, output, fmt=_with_mapping(fmt, mapping), to=to, skip_invalid=skip_invalid, stats=stats, on_invalid=show)
    check_not_empty(paths, stats)
    skipped = sum(sum(reasons.values()) for reasons in stats.skipped.values())
    extra = "".join([f", {stats.invalid:,} invalid skipped" if stats.invalid else "",
                     f", {skipped:,} not requests skipped" if skipped else ""])  # fmt: skip
    click.echo(f"wrote {count:,} records to {output}{extra}", err=True)


COMMANDS = [logs_group]
