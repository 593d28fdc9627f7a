"""Judge benchmark: the judge's throughput, and a run whose judge works while it replays.

    python benchmarks/bench_judge.py [--n 2000] [--latency-ms 50] [--concurrency 64]

The candidate and the judge are local endpoints answering in ``--latency-ms``, each in its
own process, on 127.0.0.1. Figures are ratios to the ideal time:

* judging N stored pairs in both orders: 2N calls at ``concurrency``, ideal 2N x latency / concurrency;
  target <= 1.25x;
* ``replay run`` with a judge: the replay (N requests, ideal N x latency / concurrency) and the
  judging overlap, so the ideal is the longer of the two, not their sum; target <= 1.25x of it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_engine import free_port, serve, start_server, write_log  # noqa: E402

JUDGE_SERVER = """
import sys, time
from replay.mockserver import MockServer, ServerConfig
verdicts = ['{"winner": "A", "reason": "clearer"}', '{"winner": "B", "reason": "more complete"}']
config = ServerConfig(latency_ms=float(sys.argv[2]), respond=lambda body: verdicts[len(str(body)) % 2])
MockServer(config, port=int(sys.argv[1])).start()
while True:
    time.sleep(3600)
"""


def start_judge(latency_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    return serve([sys.executable, "-c", JUDGE_SERVER, str(port), str(latency_ms)], port, "judge server")


def stored_run(store_path: str, judge_url: str, n: int, concurrency: int) -> str:
    """A completed run of n pairs whose answers all differ, with a judge in its scenario."""
    from replay.scenario_file import build_scenario
    from replay.store import Store
    from replay.types import Completion, LogRecord, Outcome, Usage

    scenario = build_scenario({"name": "bench", "logs": "x.jsonl", "candidate": {"base_url": "http://127.0.0.1:9/v1", "model": "c"},
                               "judge": {"base_url": judge_url, "model": "judge-1", "limits": {"concurrency": concurrency}}})  # fmt: skip
    store = Store(store_path)
    store.create_run("bench", "bench", scenario.snapshot(), "h")
    store.db.execute("UPDATE runs SET status = 'completed', planned = ? WHERE id = 'bench'", (n,))
    cases, outcomes = [], []
    for i in range(n):
        rid = f"r{i:05d}"
        cases.append((i, LogRecord(rid, {"messages": [{"role": "user", "content": f"Question {i}: where is my parcel?"}]})))
        for arm, text in (("logged", f"It left the depot on day {i}."), ("candidate", f"Your parcel {i} is on its way.")):
            completion = Completion(text, finish_reason="stop", usage=Usage(20, 8), latency_ms=50)
            outcomes.append(Outcome(rid, arm, "ok", completion, (), {}, 200))
    store.add_cases("bench", cases)
    store.add_outcomes("bench", outcomes)
    store.close()
    return "bench"


def judging_time(store_path: str, run_id: str) -> tuple[float, int, int]:
    from replay.stages.judge import judge_stored
    from replay.store import Store

    started = time.perf_counter()
    done = judge_stored(Store(store_path), run_id)
    return time.perf_counter() - started, done.calls, done.errors


def run_time(log: str, url: str, judge_url: str, concurrency: int, store: str) -> tuple[float, int]:
    """``replay run``'s engine with its stages, the judge among them, from the first request
    to the last verdict stored."""
    from replay.runner import Engine, Reporter
    from replay.scenario_file import load_scenario
    from replay.settings import decision_from
    from replay.stages import run_stages
    from replay.store import Store

    class Timer(Reporter):
        started = 0.0

        def start(self, *args: object) -> None:
            Timer.started = time.perf_counter()

    overrides = {"logs": [log], "candidate.base_url": url, "candidate.model": "gpt-4o-mini",
                 "limits.concurrency": concurrency, "judge.base_url": judge_url, "judge.model": "judge-1",
                 "judge.limits.concurrency": concurrency}  # fmt: skip
    scenario = load_scenario(None, overrides)
    engine = Engine(scenario, Store(store), reporter=Timer(), stages=run_stages(scenario, decision_from(dict(scenario.decision))))
    engine.run()
    elapsed = time.perf_counter() - Timer.started
    (verdicts,) = Store(store).db.execute("SELECT COUNT(*) FROM judge_pairs").fetchone()
    return elapsed, int(verdicts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    n, latency, concurrency = args.n, args.latency_ms / 1000, args.concurrency
    judge_proc, judge_url = start_judge(args.latency_ms)
    candidate_proc, candidate_url = start_server(args.latency_ms)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = os.path.join(tmp, "judge.db")
            elapsed, calls, errors = judging_time(store, stored_run(store, judge_url, n, concurrency))
            ideal = 2 * n * latency / concurrency
            print(f"judging {n} pairs in both orders: {calls} calls, {errors} errors, {elapsed:.2f}s;"
                  f" ideal {ideal:.2f}s -> {elapsed / ideal:.2f}x (target <= 1.25x)")  # fmt: skip
            log = os.path.join(tmp, "log.jsonl")
            write_log(log, n)
            elapsed, verdicts = run_time(log, candidate_url, judge_url, concurrency, os.path.join(tmp, "run.db"))
            replay_ideal, judge_ideal = n * latency / concurrency, 2 * n * latency / concurrency
            ideal = max(replay_ideal, judge_ideal)
            print(f"run with a judge: {n} requests, {verdicts} verdicts stored, {elapsed:.2f}s; ideal max({replay_ideal:.2f}s"
                  f" replay, {judge_ideal:.2f}s judge) = {ideal:.2f}s -> {elapsed / ideal:.2f}x (target <= 1.25x;"
                  f" their sum would be {(replay_ideal + judge_ideal) / ideal:.2f}x)")  # fmt: skip
    finally:
        for proc in (judge_proc, candidate_proc):
            proc.kill()


if __name__ == "__main__":
    main()
