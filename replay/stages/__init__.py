"""Stages: what drives the pure packages over a stored run (processes, threads, the store).

``replay.compare`` decides how two answers differ and knows nothing of where they are
kept; :mod:`replay.stages.compare` reads the pairs out of the store, compares them (on
worker processes when there are many), and stores the comparisons.
"""

from __future__ import annotations

from typing import Any, Protocol

from replay.config import Scenario
from replay.pipeline import PairStage
from replay.providers import get_provider
from replay.types import ARM_LOGGED, ARM_PRODUCTION


class CompareSettings(Protocol):
    """The comparing half of a run's decision settings (:class:`replay.settings.DecisionSettings`)."""

    @property
    def compare(self) -> Any: ...

    def compare_digest(self) -> str: ...

    def comparator_digests(self) -> dict[str, str]: ...


def run_stages(scenario: Scenario, settings: CompareSettings) -> list[PairStage]:
    """The stages ``replay run`` drives while it replays: each pair compared as soon as both
    its answers are stored, embedded when the scenario has an ``embeddings`` endpoint, and judged
    when it has a judge."""
    import orjson

    from replay.stages.compare import CompareAsAnswered, Digests

    base_arm = ARM_PRODUCTION if scenario.baseline == "fresh" and scenario.production is not None else ARM_LOGGED
    digests = Digests(settings.compare_digest(), orjson.dumps(settings.comparator_digests()).decode())
    stages: list[PairStage] = [CompareAsAnswered(settings.compare, digests, base_arm)]
    if scenario.embeddings is not None:
        from replay.stages.embeddings import EmbeddingsStage

        stages.append(EmbeddingsStage(scenario.embeddings, base_arm, scenario.prices))
    if scenario.judge is not None:
        from replay.stages.judge import ARM_JUDGE, JudgeStage

        get_provider(scenario.judge.arm.provider).check_arm(ARM_JUDGE, scenario.judge.arm)  # before the run exists
        stages.append(JudgeStage(scenario.judge, scenario.sample.seed, scenario.prices))
    return stages
