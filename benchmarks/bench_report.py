"""Report benchmark: the full report for 100,000 stored pairs (target: under 10 s on 2 cores).

    python benchmarks/bench_report.py [--n 100000] [--judge] [--noise N] [--semantic] [--all]

Builds a store with N logged/candidate pairs (a mix of prose, JSON extraction and
tool calls, four segments), then times, in a fresh process each:
  cold: compare every pair, store the comparisons, aggregate, gate, render all formats;
  warm: the same report again (comparisons read back from the store).
With ``--judge``, the run also has a judge whose verdicts (both orders) are stored for every pair;
with ``--noise N``, a noise floor: production answered N of the requests a second time (those
pairs judged too, with ``--judge``); with ``--semantic``, an embeddings endpoint and a stored
cosine for every pair. ``--all`` is all three, with a noise floor of 10,000.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time


def build(path: str, n: int, judge: bool = False, noise: int = 0, semantic: bool = False) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from replay.scenario_file import build_scenario
    from replay.store import Store
    from replay.types import Completion, LogRecord, Outcome, ToolCall, Usage

    data = {"name": "bench", "logs": "x.jsonl", "candidate": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
            "segment_by": "category", "critical_segments": ["billing"]}  # fmt: skip
    if judge:
        data["judge"] = {"base_url": "http://127.0.0.1:9/v1", "model": "judge-1"}
    if noise:
        data["production"] = {"base_url": "http://127.0.0.1:9/v1", "model": "gpt-4o"}
        data["noise_floor"] = {"sample": noise}
    if semantic:
        data["embeddings"] = {"base_url": "http://127.0.0.1:9/v1", "model": "embed-1"}
    store = Store(path)
    store.create_run("bench", "bench", build_scenario(data).snapshot(), "h")
    store.db.execute("UPDATE runs SET status = 'completed', planned = ? WHERE id = 'bench'", (n,))
    rng = random.Random(1)
    categories = ("billing", "shipping", "account", "technical")
    for start in range(0, n, 10_000):
        cases, outcomes = [], []
        for i in range(start, min(n, start + 10_000)):
            rid = f"r{i:06d}"
            request = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"question {i}"}]}
            kind = i % 10
            calls: tuple = ()
            if kind < 2:
                request["response_format"] = {"type": "json_object"}
                base = json.dumps({"order_id": str(i), "urgent": i % 3 == 0, "amount": i % 97})
                cand = base if rng.random() < 0.95 else f"```json\n{base}\n```"
            elif kind == 2:
                base = cand = ""
                calls = (ToolCall("c1", "lookup", json.dumps({"order": i})),)
            else:
                base = f"Your parcel {i} is in transit and should arrive within {i % 5 + 1} business days."
                cand = base if rng.random() < 0.6 else f"Parcel {i} is on its way; expect it in {i % 5 + 1} days."
            cases.append((i, LogRecord(rid, request, metadata={"category": categories[i % 4]})))
            latency = rng.lognormvariate(6.5, 0.3)
            arms = [("logged", base, latency, 0.002), ("candidate", cand, latency * 0.8, 0.0005)]
            if i < noise:
                again = base if rng.random() < 0.7 else f"Parcel {i} is in transit; it should arrive in {i % 5 + 1} days."
                arms.append(("noise", again if not calls else "", latency * 1.05, 0.002))
            for arm, text, lat, cost in arms:
                completion = Completion(text=text or None, tool_calls=calls, finish_reason="tool_calls" if calls else "stop",
                                        usage=Usage(30, 20), latency_ms=lat, ttft_ms=lat / 3)  # fmt: skip
                outcomes.append(Outcome(rid, arm, "ok", completion, (), {}, 200, cost_usd=cost))
        store.add_cases("bench", cases)
        store.add_outcomes("bench", outcomes)
        ids = [case[1].id for case in cases]
        noise_ids = [rid for rid in ids if int(rid[1:]) < noise]
        if judge:
            store.add_judgements("bench", *_verdicts(rng, ids))
            if noise_ids:
                store.add_judgements("bench", *_verdicts(rng, noise_ids, "noise"), kind="noise")
        if semantic:
            for kind, chosen in (("candidate", ids), ("noise", noise_ids)):
                rows = [(rid, f"b{rid}", f"c{rid}", min(1.0, rng.betavariate(8, 1.5))) for rid in chosen]
                store.add_pair_similarities("bench", "embed-1", rows, kind)
    store.close()


def _verdicts(rng: random.Random, ids: list[str], kind: str = "candidate") -> tuple[list, list]:
    """Two orders per pair; a verdict that sometimes follows the position, sometimes the answer."""
    verdicts, rows = [], []
    for rid in ids:
        first = rng.random() < 0.5
        for turn, candidate_is_a in enumerate((first, not first)):
            key = f"{kind}:{rid}:{turn}"
            winner = rng.choice(("A", "B", "tie", "A" if candidate_is_a else "B"))
            verdicts.append((key, winner, f"reason for {rid}", 1, 0.0001, "judge-1"))
            rows.append((rid, turn, candidate_is_a, key, None, 1, 0.0001))
    return verdicts, rows


def timed_report(path: str, out_dir: str) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "replay", "report", "bench", "--store", path,
           "--report-json", os.path.join(out_dir, "r.json"), "--report-md", os.path.join(out_dir, "r.md"),
           "--report-junit", os.path.join(out_dir, "r.xml")]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "100"})
    elapsed = time.perf_counter() - t0
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--judge", action="store_true", help="the run has a judge, with verdicts for every pair")
    parser.add_argument("--noise", type=int, default=0, help="a noise floor of this many requests")
    parser.add_argument("--semantic", action="store_true", help="an embeddings endpoint, a cosine stored for every pair")
    parser.add_argument("--all", action="store_true", help="--judge --semantic --noise 10000")
    args = parser.parse_args()
    if args.all:
        args.judge, args.semantic, args.noise = True, True, args.noise or 10_000
    tmp = tempfile.mkdtemp(prefix="replay-report-bench-")
    path = os.path.join(tmp, "bench.db")
    t0 = time.perf_counter()
    build(path, args.n, args.judge, args.noise, args.semantic)
    extras = [name for name, on in (("judge verdicts", args.judge), (f"a noise floor of {args.noise:,}", args.noise),
                                    ("cosines", args.semantic)) if on]  # fmt: skip
    print(f"built {args.n:,} stored pairs{' with ' + ', '.join(extras) if extras else ''} in {time.perf_counter() - t0:.1f}s")
    cold, peak = timed_report(path, tmp)
    print(f"cold report (compare + store + aggregate + gate + 4 formats): {cold:.2f}s (target < 10 s) "
          f"{'ok' if cold < 10 else 'SLOW'}; peak memory {peak:.0f} MB")  # fmt: skip
    warm, _ = timed_report(path, tmp)
    print(f"warm report (comparisons read back): {warm:.2f}s (target < 10 s) {'ok' if warm < 10 else 'SLOW'}")


if __name__ == "__main__":
    main()
