"""Whether a judge is the same model as an arm, or of the same family (vendor prefix).

A model judging its own answers prefers them (self-preference: Zheng et al. 2023, Panickssery
et al. 2024), so the same model is refused unless allowed, and the same family is warned about.
"""

from __future__ import annotations

import re

_FAMILY = re.compile(r"[a-z]+")


def _bare(model: str) -> str:
    """``openai/gpt-4o`` and ``GPT-4o`` name the same model as ``gpt-4o``."""
    return model.strip().lower().rsplit("/", 1)[-1]


def same_model(a: str, b: str) -> bool:
    return _bare(a) == _bare(b)


def family(model: str) -> str:
    """The vendor prefix: ``gpt`` for gpt-4o and gpt-4o-mini, ``claude`` for claude-3-5-sonnet."""
    bare = _bare(model)
    match = _FAMILY.match(bare)
    return match.group() if match else bare


def same_family(a: str, b: str) -> bool:
    return family(a) == family(b)
