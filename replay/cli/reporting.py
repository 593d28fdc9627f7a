"""``--format``, the ``--report-*`` options and the report files, all from the renderer registry.

Nothing here names a format: a renderer registered in :mod:`replay.reports` (a built-in or
a plugin) becomes a ``--format`` choice and, when it declares an option, a ``--report-*``
option of every :class:`ReportCommand` (``run``, ``report``, ``gate``). Both are read from
the registry when a command parses its arguments or shows its help.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Iterable

import click

from replay.reports import Renderer, file_renderers, renderers


class FormatChoice(click.Choice[str]):
    """The registered formats, read from the registry each time they are shown or checked."""

    def __init__(self) -> None:
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]  # read-only: the registry is the truth
        return tuple(renderer.name for renderer in renderers())


class ReportCommand(click.Command):
    """A command that writes report files: one ``--report-*`` option per renderer that declares
    one, listed before ``--store``; the callback gets them as ``report_files``, a dict from
    format name to path holding the options given, in registry order."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        at = next((i for i, param in enumerate(params) if param.name == "store_path"), len(params))
        return params[:at] + [_file_option(renderer) for renderer in file_renderers()] + params[at:]

    def invoke(self, ctx: click.Context) -> Any:
        given = {renderer.name: ctx.params.pop(renderer.param, None) for renderer in file_renderers()}
        ctx.params["report_files"] = {name: path for name, path in given.items() if path}
        return super().invoke(ctx)


@functools.lru_cache(maxsize=None)
def _file_option(renderer: Renderer) -> click.Option:
    """One option object per renderer: click matches the options it parsed by identity."""
    assert renderer.option is not None  # file_renderers() has only renderers with an option
    return click.Option([renderer.option, renderer.param], type=click.Path(dir_okay=False, writable=True),
                        help=renderer.help)  # fmt: skip


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def print_renderables(renderables: Iterable[Any]) -> None:
    out = console()
    for renderable in renderables:
        out.print(renderable)


def write_reports(evaluation: Any, report_files: dict[str, str]) -> None:
    """Write the requested report files, and append the step-summary formats (Markdown) to
    $GITHUB_STEP_SUMMARY when set; say the evaluation's notes on stderr."""
    from replay.reports.escape import visible

    for note in evaluation.notes:
        click.echo(f"note: {visible(note)}", err=True)
    for renderer in file_renderers():
        path = report_files.get(renderer.name)
        if path:
            _write(path, renderer.render(evaluation))
            click.echo(f"wrote {visible(path)}", err=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            for renderer in renderers():
                if renderer.step_summary:
                    handle.write(renderer.render(evaluation))


def check_report_paths(report_files: dict[str, str]) -> None:
    """Fail now, not after the run, on a report path that can never be written."""
    from replay.errors import InputError

    for path in report_files.values():
        if os.path.isdir(path):
            raise InputError(f"{path}: cannot write the report (it is a directory)")
        parent = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(parent):  # missing folders are created when the report is written
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise InputError(f"{path}: cannot write the report ({parent} is not a directory)")
        if not os.access(parent, os.W_OK):
            raise InputError(f"{path}: cannot write the report ({parent} is not writable)")


def _write(path: str, text: str) -> None:
    """Write whole or not at all (a temporary file renamed into place)."""
    from replay.errors import InputError

    tmp = f"{path}.tmp"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
