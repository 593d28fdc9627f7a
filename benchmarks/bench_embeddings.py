"""Embeddings benchmark: 100,000 stored pairs embedded against a local endpoint, then reported.

    python benchmarks/bench_embeddings.py [--n 100000] [--batch-size 64] [--dims 256]

Builds the store of benchmarks/bench_report.py (a mix of prose, JSON and tool calls, many
candidate answers equal to the logged ones) with an ``embeddings`` endpoint in its scenario,
serves ``replay mock-server`` in its own process, and times, in this process:
  embed: every stored pair's texts sent in batches, vectors and cosines stored;
  again: the same (every cosine stored: no call);
then, in a fresh process each, the full report with semantic similarity (target < 10 s).
Calls are counted on the client, every attempt included; target: at most 2 x N / batch_size.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench_engine import free_port, serve  # noqa: E402
from bench_report import build, timed_report  # noqa: E402


def start_server(dims: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    return serve([sys.executable, "-m", "replay", "mock-server", "--port", str(port), "--embedding-dims", str(dims)], port)


def add_endpoint(path: str, url: str, batch_size: int) -> None:
    """Give the stored run's scenario an embeddings endpoint, as a scenario file would."""
    from replay.scenario_file import build_scenario

    data = {"name": "bench", "logs": "x.jsonl", "candidate": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
            "segment_by": "category", "critical_segments": ["billing"],
            "embeddings": {"base_url": url, "model": "mock-embed", "batch_size": batch_size},
            "gates": ["default", {"metric": "semantic_similarity", "min": 0.5}]}  # fmt: skip
    import json

    db = sqlite3.connect(path)
    db.execute("UPDATE runs SET scenario_json = ? WHERE id = 'bench'", (json.dumps(build_scenario(data).snapshot()),))
    db.commit()
    db.close()


def embed(path: str) -> tuple[float, int, int]:
    from replay.scenario_file import scenario_from_snapshot
    from replay.stages.embeddings import embed_stored
    from replay.store import Store

    store = Store(path)
    scenario = scenario_from_snapshot(store.get_run("bench").scenario)
    assert scenario.embeddings is not None
    t0 = time.perf_counter()
    embedder = asyncio.run(embed_stored(store, "bench", "logged", scenario.embeddings))
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed, embedder.calls, embedder.embedded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dims", type=int, default=256)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="replay-embeddings-bench-")
    path = os.path.join(tmp, "bench.db")
    build(path, args.n)
    proc, url = start_server(args.dims)
    try:
        add_endpoint(path, url, args.batch_size)
        elapsed, calls, texts = embed(path)
        bound = 2 * args.n / args.batch_size
        needed = math.ceil(texts / args.batch_size)
        print(f"embed {args.n:,} pairs: {texts:,} distinct texts in {calls:,} calls (ceil(texts / {args.batch_size}) ="
              f" {needed:,}; target <= 2 x N / batch_size = {bound:,.0f}) {'ok' if calls <= bound else 'TOO MANY'};"
              f" {elapsed:.1f}s, {args.dims} dimensions")  # fmt: skip
        again, calls_again, _ = embed(path)
        print(f"embed again: {calls_again} calls in {again:.2f}s (target 0 calls) {'ok' if calls_again == 0 else 'SENT AGAIN'}")
    finally:
        proc.terminate()
        proc.wait(10)
    cold, peak = timed_report(path, tmp)
    print(f"cold report with semantic similarity: {cold:.2f}s (target < 10 s) {'ok' if cold < 10 else 'SLOW'};"
          f" peak memory {peak:.0f} MB")  # fmt: skip
    warm, _ = timed_report(path, tmp)
    print(f"warm report with semantic similarity: {warm:.2f}s (target < 10 s) {'ok' if warm < 10 else 'SLOW'}")


if __name__ == "__main__":
    main()
