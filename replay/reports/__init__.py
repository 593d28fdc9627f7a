"""Reports: render an :class:`~replay.evaluate.Evaluation` as text. Renderers never print.

Each format registers a function returning a string (the terminal renderer returns
rich renderables, which the CLI prints); later formats (HTML) register the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # for the annotations only
    from replay.evaluate import Evaluation

RENDERERS: dict[str, Callable[..., Any]] = {}
FILE_FORMATS = ("markdown", "json", "junit")


def register_renderer(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(render: Callable[..., Any]) -> Callable[..., Any]:
        RENDERERS[name] = render
        return render

    return decorate


def render(name: str, evaluation: Evaluation, **options: Any) -> Any:
    _load()
    return RENDERERS[name](evaluation, **options)


def _load() -> None:
    from replay.reports import json_report, junit, markdown, terminal  # noqa: F401  register themselves


__all__ = ["FILE_FORMATS", "RENDERERS", "register_renderer", "render"]
