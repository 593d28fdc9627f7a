"""Comparison workers: a worker that dies or raises ends the report with one clear error, never a hang."""

import os
import signal

import pytest

from replay.stages import compare as compare_stage
from replay.errors import ComparisonFailed
from replay.evaluate import evaluate
from replay.store import Store
from stored_runs import golden_run


@pytest.fixture
def parallel(monkeypatch):
    monkeypatch.setattr(compare_stage, "PARALLEL_FROM", 1)
    monkeypatch.setattr(compare_stage, "_workers", lambda n, path: 2)


@pytest.fixture
def deadline():
    """Fail instead of hanging the suite if the parent waits forever for a dead worker."""

    def expired(*_):
        raise TimeoutError("the report hung waiting for a comparison worker")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


class PluginError(Exception):
    """An exception the parent cannot rebuild from its arguments (two required ones)."""

    def __init__(self, code, detail):
        super().__init__(f"{code}: {detail}")


def test_a_worker_killed_by_the_system_ends_in_one_error(tmp_path, monkeypatch, parallel, deadline):
    golden_run(tmp_path / "g.db", n=40)
    parent = os.getpid()
    real = compare_stage.measure

    def killed(*args):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does
        return real(*args)

    monkeypatch.setattr(compare_stage, "measure", killed)
    with pytest.raises(ComparisonFailed, match="a comparison worker died"):
        evaluate(Store(str(tmp_path / "g.db")), "golden-run")


def test_a_comparator_error_in_a_worker_is_one_message(tmp_path, monkeypatch, parallel, deadline):
    golden_run(tmp_path / "g.db", n=40)

    def broken(*args):
        raise PluginError("E42", "the plugin broke")

    monkeypatch.setattr(compare_stage, "measure", broken)
    with pytest.raises(ComparisonFailed, match=r"^comparing pairs failed: PluginError: E42: the plugin broke$"):
        evaluate(Store(str(tmp_path / "g.db")), "golden-run")
