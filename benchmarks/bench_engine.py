"""Engine benchmark: throughput against a local 50 ms endpoint, whole-process cost, rate accuracy.

    python benchmarks/bench_engine.py [--n 2000] [--latency-ms 50]

The mock endpoint runs in its own process (as a real server would), on 127.0.0.1.
Figures are printed as ratios to the ideal time N x latency / concurrency.
Targets: <= 1.25x at concurrency 64, <= 2.5x at 256 (2 cores: the server competes for
CPU); deciding and reporting after the
last answer under 0.2 s; the whole process within engine time + 0.6 s and under 150 MB peak; at rpm 300
against a server allowing 5 requests in any second, zero 429s and within 5% of the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(latency_ms: float, rpm: float | None = None, chunks: int = 1) -> tuple[subprocess.Popen, str]:
    """A streamed answer: role chunk, ``chunks`` content chunks, finish, usage, [DONE]."""
    port = free_port()
    cmd = [sys.executable, "-m", "replay", "mock-server", "--port", str(port), "--latency-ms", str(latency_ms),
           "--chunks", str(chunks)]  # fmt: skip
    if rpm:
        cmd += ["--rpm", str(rpm)]
    return serve(cmd, port)


def serve(cmd: list[str], port: int, what: str = "mock server") -> tuple[subprocess.Popen, str]:
    """Start a server process listening on ``port`` and wait until it accepts connections."""
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{what} did not start")


def write_log(path: str, n: int) -> None:
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(json.dumps({
                "id": f"r{i}",
                "request": {"model": "gpt-4o-mini", "max_tokens": 64,
                            "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": f"Question number {i}: where is my parcel?"}]},
                "response": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "On its way."},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 24, "completion_tokens": 4, "total_tokens": 28}},
                "latency_ms": 620, "metadata": {"category": "shipping"},
            }) + "\n")  # fmt: skip


def engine_time(log: str, url: str, concurrency: int, store: str, rpm: float | None = None) -> tuple[float, int, int]:
    """The engine as ``replay run`` drives it (its stages included), from the first request to
    the last answer stored and compared."""
    from replay.scenario_file import load_scenario
    from replay.runner import Engine, Reporter
    from replay.settings import decision_from
    from replay.store import Store

    class Timer(Reporter):
        started = 0.0
        errors = 0
        n = 0

        def start(self, *args: object) -> None:
            Timer.started = time.perf_counter()

        def outcome(self, outcome, spent):  # type: ignore[no-untyped-def]
            Timer.n += 1
            Timer.errors += outcome.status != "ok"

    overrides = {"logs": [log], "candidate.base_url": url, "candidate.model": "gpt-4o-mini",
                 "limits.concurrency": concurrency, "limits.rpm": rpm}  # fmt: skip
    scenario = load_scenario(None, overrides)
    try:
        from replay.stages import run_stages
    except ImportError:  # a version before the pipeline, measured for comparison
        engine = Engine(scenario, Store(store), reporter=Timer())
    else:
        engine = Engine(scenario, Store(store), reporter=Timer(), stages=run_stages(scenario, decision_from(dict(scenario.decision))))
    engine.run()
    return time.perf_counter() - Timer.started, Timer.n, Timer.errors


def report_tail(store: str) -> float:
    """What ``replay run`` does after the engine: decide, and render the terminal and JSON reports."""
    import io

    from rich.console import Console

    from replay.evaluate import evaluate
    from replay.reports.json_report import render_json
    from replay.reports.terminal import render_terminal
    from replay.store import Store

    started = time.perf_counter()
    evaluation = evaluate(Store(store), "latest")
    console = Console(file=io.StringIO(), width=100)
    for part in render_terminal(evaluation):
        console.print(part)
    render_json(evaluation)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--rate-seconds", type=float, default=30.0, help="duration of the rpm test")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="replay-bench-")
    log = os.path.join(tmp, "log.jsonl")
    write_log(log, args.n)
    proc, url = start_server(args.latency_ms)
    try:
        for concurrency, target in ((64, 1.25), (256, 2.5)):
            elapsed, n, errors = engine_time(log, url, concurrency, os.path.join(tmp, f"c{concurrency}.db"))
            ideal = args.n * args.latency_ms / 1000 / concurrency
            verdict = "ok" if elapsed <= ideal * target else "SLOW"
            print(f"concurrency {concurrency:>3}: {n} requests, {errors} errors, engine {elapsed:.2f}s, "
                  f"ideal {ideal:.2f}s, ratio {elapsed / ideal:.2f}x (target <= {target}x) {verdict}")  # fmt: skip
            if concurrency == 64:
                engine_c64 = elapsed
                tail = report_tail(os.path.join(tmp, f"c{concurrency}.db"))
                print(f"after the last answer: decide and report {tail:.3f}s (target < 0.2 s)")

        store = os.path.join(tmp, "whole.db")
        # as installed: with bytecode caching (some machines turn it off), compiled once beforehand
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([sys.executable, "-c", "import replay.cli.run, replay.evaluate, replay.reports"], env=env, check=True)
        t0 = time.perf_counter()
        proc_result = subprocess.run(
            [sys.executable, "-m", "replay", "run", "--logs", log, "--candidate-url", url, "--candidate-model",
             "gpt-4o-mini", "--concurrency", "64", "--store", store, "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        if proc_result.returncode not in (0, 1):  # 1: the default gates' verdict, the run itself completed
            raise SystemExit(f"replay run failed with exit code {proc_result.returncode}")
        whole = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"whole process (concurrency 64): {whole:.2f}s, engine + {whole - engine_c64:.2f}s (target <= + 0.6 s);"
              f" peak memory {peak_mb:.0f} MB (target < 150 MB)")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait()

    rpm = 300.0
    n = int(rpm / 60 * args.rate_seconds)
    rate_log = os.path.join(tmp, "rate.jsonl")
    write_log(rate_log, n)
    proc, url = start_server(args.latency_ms, rpm=rpm)
    try:
        elapsed, done, errors = engine_time(rate_log, url, 16, os.path.join(tmp, "rate.db"), rpm=rpm)
    finally:
        proc.terminate()
        proc.wait()
    import sqlite3

    db = sqlite3.connect(os.path.join(tmp, "rate.db"))
    throttled = sum(  # parse: a bare LIKE '%429%' also matches timestamps
        any(attempt["http_status"] == 429 for attempt in json.loads(row[0]))
        for row in db.execute("SELECT attempts_json FROM results")
    )
    # n requests spaced evenly occupy (n - 1) intervals
    achieved = (done - 1) / (elapsed - args.latency_ms / 1000) * 60
    print(f"rate: rpm {rpm:.0f}, {done} requests in {elapsed:.1f}s, achieved {achieved:.1f} rpm "
          f"({achieved / rpm:.1%} of the limit), requests that met a 429: {throttled}")  # fmt: skip


if __name__ == "__main__":
    main()
