"""Reports: render an :class:`~replay.evaluate.Evaluation`. Renderers never print.

Each format is one module here that registers its render function with
:func:`register_renderer`, declaring what the CLI needs to offer it: its ``--format``
name, its file suffix, the ``--report-*`` option that writes it to a file (none for the
terminal report), whether it returns rich renderables (the terminal report, which the CLI
prints) or text, and whether it is appended to ``$GITHUB_STEP_SUMMARY``. A renderer
with a ``top`` parameter (disagreements to list) receives ``replay report --top``, and
lists its parameter's default without it. The CLI builds ``--format``, the ``--report-*``
options and the writing of report files from this registry alone.

The CLI reads the registry when a command parses its arguments or shows its help, not
when it is imported: a renderer registered before then is offered everywhere. An HTML
report is ``replay/reports/html.py`` (a function decorated with ``@register_renderer("html",
suffix=".html", option="--report-html", help=...)``) plus its module name in
:data:`BUILTIN_MODULES`; a plugin registers the same way from its own module, imported
before ``replay.cli.main()`` runs (a wrapper script, or ``sitecustomize``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # for the annotations only
    from replay.evaluate import Evaluation

BUILTIN_MODULES = ("json_report", "markdown", "junit", "terminal")
"""Imported on first use. Their order is the order of the ``--report-*`` options and of the
report files written; other renderers follow in registration order. (A renderer's ``order``
places it among the ``--format`` choices.)"""
OPTION_PREFIX = "--report-"
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

RenderFunction = Callable[..., Any]
"""``render(evaluation, **options) -> str`` (or rich renderables, for a ``rich`` renderer)."""


@dataclass(frozen=True)
class Renderer:
    """A registered report format: what the CLI needs to offer it, and its render function."""

    name: str
    """Its ``--format`` choice."""
    render: RenderFunction
    suffix: str
    """The file name ending of its report files (``.md``)."""
    option: str | None = None
    """The option that writes it to a file (``--report-md``); None: never written to a file."""
    help: str = ""
    """The help of its ``option``."""
    rich: bool = False
    """It returns rich renderables (printed by a console), not text."""
    top: int | None = None
    """Disagreements it lists unless ``--top`` says otherwise: the default of its ``top``
    parameter; None: it has no ``top`` with a default, and gets none."""
    step_summary: bool = False
    """Appended to ``$GITHUB_STEP_SUMMARY`` (GitHub Actions' job summary) when that is set."""
    order: int = 100
    """Its place among the ``--format`` choices (lower first; equal: registration order)."""

    @property
    def param(self) -> str:
        """The name of its option's value among a command's parameters."""
        return f"report_file_{self.name}"


RENDERERS: dict[str, Renderer] = {}


def register_renderer(name: str, *, suffix: str, option: str | None = None, help: str = "", rich: bool = False,
                      step_summary: bool = False, order: int = 100) -> Callable[[RenderFunction], RenderFunction]:  # fmt: skip
    """Register the decorated function, ``render(evaluation, **options)``, as the ``name``
    format (see :class:`Renderer`)."""

    def decorate(render: RenderFunction) -> RenderFunction:
        renderer = Renderer(name, render, suffix, option, help, rich, _default_top(render), step_summary, order)
        _load()  # the built-ins first, so that a plugin cannot take their names or options
        _check(renderer)
        RENDERERS[name] = renderer
        return render

    return decorate


def unregister_renderer(name: str) -> None:
    """Forget the ``name`` format (a plugin unloading, a test cleaning up)."""
    del RENDERERS[name]


def _default_top(render: RenderFunction) -> int | None:
    parameter = inspect.signature(render).parameters.get("top")
    return parameter.default if parameter is not None and isinstance(parameter.default, int) else None


def _check(renderer: Renderer) -> None:
    """Refuse a registration the CLI could not offer: it is a programming error, said at import."""
    if not _NAME.match(renderer.name):
        raise ValueError(f"renderer name {renderer.name!r}: lower-case letters, digits and '_' only")
    if renderer.name in RENDERERS:
        raise ValueError(f"renderer {renderer.name!r} is already registered")
    if renderer.rich and renderer.step_summary:
        raise ValueError(f"renderer {renderer.name!r}: rich renderables cannot go to $GITHUB_STEP_SUMMARY")
    if renderer.option is None:
        return
    if not renderer.option.startswith(OPTION_PREFIX) or not _NAME.match(renderer.option[len(OPTION_PREFIX):]):
        raise ValueError(f"renderer {renderer.name!r}: its option must be {OPTION_PREFIX}NAME, not {renderer.option!r}")
    if renderer.rich:
        raise ValueError(f"renderer {renderer.name!r}: rich renderables cannot be written to a file")
    if any(other.option == renderer.option for other in RENDERERS.values()):
        raise ValueError(f"renderer {renderer.name!r}: option {renderer.option} is already taken")


def get_renderer(name: str) -> Renderer:
    _load()
    return RENDERERS[name]


def renderers() -> list[Renderer]:
    """Every format, in the order of the ``--format`` choices."""
    return sorted(_listed(), key=lambda renderer: renderer.order)


def file_renderers() -> list[Renderer]:
    """The formats written to files, in the order of their ``--report-*`` options."""
    return [renderer for renderer in _listed() if renderer.option]


def _listed() -> list[Renderer]:
    """Built-ins first, in :data:`BUILTIN_MODULES` order (whichever module was imported
    first), then the others in registration order."""
    _load()
    rank = {f"replay.reports.{module}": index for index, module in enumerate(BUILTIN_MODULES)}
    return sorted(RENDERERS.values(), key=lambda renderer: rank.get(renderer.render.__module__, len(rank)))


def render(name: str, evaluation: Any, **options: Any) -> Any:
    return get_renderer(name).render(evaluation, **options)


_loaded = False


def _load() -> None:
    """Import the built-in renderers (once; each registers itself as it is imported)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(f"replay.reports.{module}")


__all__ = ["BUILTIN_MODULES", "RENDERERS", "Renderer", "file_renderers", "get_renderer", "register_renderer",
           "render", "renderers", "unregister_renderer"]  # fmt: skip
