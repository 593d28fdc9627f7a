"""The pairwise LLM judge's pure logic: no store, no network (like :mod:`replay.compare`).

What the judge is shown (:mod:`~replay.judge.prompt`), in which order (:mod:`~replay.judge.order`),
how its answer is read (:mod:`~replay.judge.verdict`), how the two orders of one pair combine, and
what a verdict is cached under (:mod:`~replay.judge.key`). The network part is
:mod:`replay.stages.judge`; the figures are :mod:`replay.judge.summary`.
"""

from replay.judge.key import verdict_key
from replay.judge.order import candidate_first, in_sample
from replay.judge.prompt import DEFAULT_RUBRIC, DEFAULT_TEMPLATE, PLACEHOLDERS, answer_text, check_template, render_prompt
from replay.judge.verdict import BASELINE, CANDIDATE, TIE, combine, outcome_of, parse_verdict, same_answer

__all__ = [
    "BASELINE", "CANDIDATE", "DEFAULT_RUBRIC", "DEFAULT_TEMPLATE", "PLACEHOLDERS", "TIE", "answer_text",
    "candidate_first", "check_template", "combine", "in_sample", "outcome_of", "parse_verdict", "render_prompt",
    "same_answer", "verdict_key",
]  # fmt: skip
