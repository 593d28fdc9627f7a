"""replay.pipeline: pairs offered to the stages as soon as both answers are stored, while the replay goes on."""

import os

from conftest import record, write_log
from replay.pipeline import AnsweredPair, PairKind, PairStage, PairTracker
from replay.runner import Engine
from replay.scenario_file import load_scenario
from replay.store import Store
from replay.types import ARM_CANDIDATE, ARM_LOGGED, ARM_NOISE, ARM_PRODUCTION, LogRecord, Outcome


class Recorder(PairStage):
    """Notes each pair offered and what the store and the endpoint had seen by then."""

    name = "recorder"

    def __init__(self, script=None):
        self.script, self.offered, self.finished = script, [], False

    def start(self, services):
        self.services = services

    def offer(self, pair):
        stored = {arm for arm, in self.services.store.db.execute(
            "SELECT arm FROM results WHERE run_id = ? AND request_id = ?", (self.services.run_id, pair.request_id))}  # fmt: skip
        sent = len(self.script.bodies) if self.script else None
        self.offered.append((pair.request_id, pair.baseline.arm, pair.candidate.arm, stored, sent))
        self.kinds = getattr(self, "kinds", []) + [pair.kind]

    async def finish(self):
        self.finished = True


def scripted_scenario(script, log, **extra):
    overrides = {"logs": [log], "candidate.base_url": script.base_url, "candidate.model": "cand-1",
                 "candidate.provider": "scripted", "limits.concurrency": 2, **extra}  # fmt: skip
    return load_scenario(None, overrides)


def test_each_pair_is_offered_once_both_answers_are_stored_while_the_replay_goes_on(scripted, tmp_path, store_path):
    n = 300
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i:03d}", f"question {i}") for i in range(n)])
    recorder = Recorder(scripted)
    os.makedirs(os.path.dirname(store_path))
    Engine(scripted_scenario(scripted, log), Store(store_path), stages=[recorder]).run()
    assert sorted(request_id for request_id, *_ in recorder.offered) == [f"r{i:03d}" for i in range(n)]
    assert all(stored == {ARM_LOGGED, ARM_CANDIDATE} for *_, stored, _ in recorder.offered)
    assert {(base, cand) for _, base, cand, _, _ in recorder.offered} == {(ARM_LOGGED, ARM_CANDIDATE)}
    first_sent = recorder.offered[0][-1]
    assert first_sent < n / 2  # the first pair went to the stages with most of the replay still to come
    assert recorder.finished


def test_with_a_fresh_baseline_the_pair_is_production_and_candidate(scripted, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q {i}") for i in range(5)])
    scenario = scripted_scenario(scripted, log, **{"baseline": "fresh", "production.base_url": scripted.base_url,
                                                   "production.model": "prod-1", "production.provider": "scripted"})  # fmt: skip
    recorder = Recorder()
    os.makedirs(os.path.dirname(store_path))
    Engine(scenario, Store(store_path), stages=[recorder]).run()
    assert len(recorder.offered) == 5
    assert all((base, cand) == (ARM_PRODUCTION, ARM_CANDIDATE) and {ARM_PRODUCTION, ARM_CANDIDATE} <= stored
               for _, base, cand, stored, _ in recorder.offered)  # fmt: skip


def test_a_resumed_run_offers_only_the_pairs_it_answers_itself(scripted, tmp_path, store_path):
    """Pairs with an answer stored before the resume are left to the report's catch-up, which
    compares what is stored: here r2 keeps its logged answer and only r1 and r4 are answered afresh."""
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q {i}") for i in range(6)])
    scenario = scripted_scenario(scripted, log)
    os.makedirs(os.path.dirname(store_path))
    store = Store(store_path)
    first = Engine(scenario, store)
    first.run()
    store.db.execute("DELETE FROM results WHERE run_id = ? AND request_id IN ('r1', 'r4')", (first.run_id,))
    store.db.execute("DELETE FROM results WHERE run_id = ? AND request_id = 'r2' AND arm = 'candidate'",
                     (first.run_id,))  # fmt: skip
    recorder = Recorder()
    Engine(scenario, store, run_id=first.run_id, stages=[recorder]).run()
    assert sorted(request_id for request_id, *_ in recorder.offered) == ["r1", "r4"]


def outcome(request_id, arm):
    return Outcome(request_id, arm, "ok", None, (), {})


def test_the_tracker_forgets_a_request_once_its_pair_is_offered():
    offered = []

    class Collect(PairStage):
        name = "collect"

        def offer(self, pair):
            offered.append(pair)

    tracker = PairTracker([Collect()], [PairKind("candidate", ARM_LOGGED, ARM_CANDIDATE)])
    tracker.expect(LogRecord("a", {"messages": []}, metadata={"k": 1}))
    tracker.answered(outcome("unexpected", ARM_CANDIDATE))  # not expected: ignored
    tracker.answered(outcome("a", ARM_CANDIDATE))
    assert offered == []
    tracker.answered(outcome("a", ARM_PRODUCTION))  # not this run's baseline arm
    assert offered == []
    tracker.answered(outcome("a", ARM_LOGGED))
    assert [(p.request_id, p.metadata, p.baseline.arm, p.candidate.arm) for p in offered] == [
        ("a", {"k": 1}, ARM_LOGGED, ARM_CANDIDATE)]  # fmt: skip
    assert isinstance(offered[0], AnsweredPair) and tracker._waiting == {}
    tracker.answered(outcome("a", ARM_CANDIDATE))  # a late duplicate offers nothing twice
    assert len(offered) == 1


def test_a_run_without_stages_tracks_nothing(scripted, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record("r1")])
    os.makedirs(os.path.dirname(store_path))
    engine = Engine(scripted_scenario(scripted, log), Store(store_path))
    engine.run()
    assert not engine._pairs and engine._pairs._waiting == {}


def test_the_noise_floor_sub_sample_is_offered_as_production_against_itself(scripted, tmp_path, store_path):
    log = write_log(tmp_path / "log.jsonl", [record(f"r{i}", f"q {i}") for i in range(10)])
    scenario = scripted_scenario(scripted, log, **{"production.base_url": scripted.base_url, "production.model": "prod-1",
                                                   "production.provider": "scripted", "noise_floor.sample": 3})  # fmt: skip
    recorder = Recorder()
    os.makedirs(os.path.dirname(store_path))
    Engine(scenario, Store(store_path), stages=[recorder]).run()
    noise = [(rid, base, other) for (rid, base, other, _, _), kind in zip(recorder.offered, recorder.kinds) if kind == "noise"]
    assert len(noise) == 3 and {(base, other) for _, base, other in noise} == {(ARM_LOGGED, ARM_NOISE)}
    assert recorder.kinds.count("candidate") == 10
    prompts = [body["messages"][-1]["content"] for body in scripted.bodies if body["model"] == "prod-1"]
    assert sorted(prompts) == sorted(f"q {rid[1:]}" for rid, _, _ in noise)  # production asked for those three only
