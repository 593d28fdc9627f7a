"""How the gates decide, measured by simulation: the figures in the README's "Deciding" section.

    python benchmarks/simulate_gates.py            # about 5 minutes on 2 cores
    python benchmarks/simulate_gates.py --quick    # fewer repetitions

Prints, under the data models the README names:
1. false PASS with the truth exactly at the margin, per kind of gate and n;
2. power: how often a 5-point format drop at n = 400 FAILs;
3. how many pairs each default gate needs to PASS an equal candidate in 80% of runs;
4. A/A false FAIL with six gates and eight critical segments.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from test_gates_simulation import (  # noqa: E402  (the models the tests use)
    SEGMENTS, SIX_GATES, latencies, mean_sample, rate_tables, simulated_run,
)  # fmt: skip

from replay import stats  # noqa: E402
from replay.gates import FAIL, SegmentSpec, decide  # noqa: E402
from replay.metrics import METRICS  # noqa: E402


def false_pass(runs: int) -> None:
    print("1. False PASS at the margin (nominal 2.5%)")
    print(f"{'gate':44} {'model':18} " + " ".join(f"{n:>7}" for n in (50, 100, 400, 2000)))
    rng = np.random.default_rng(1)
    for correlated in (True, False):
        model = "correlated" if correlated else "independent"
        row = []
        for n in (50, 100, 400, 2000):
            tables = rate_tables(rng, n, runs, 0.05, 0.06, correlated)
            row.append(np.mean([stats.newcombe_paired(*map(int, t)).high <= 0.01 for t in tables]))
        print(f"{'error_rate max_delta 0.01 (5% -> 6%)':44} {model:18} " + " ".join(f"{x:7.2%}" for x in row))
        row = []
        for n in (50, 100, 400, 2000):
            tables = rate_tables(rng, n, runs, 0.05, 0.075, correlated)
            hits = [t[0] + t[2] > 0 and stats.paired_ratio(*map(int, t)).high <= 1.5 for t in tables]
            row.append(np.mean(hits))
        print(f"{'error_rate max_delta_pct 50 (5% -> 7.5%)':44} {model:18} " + " ".join(f"{x:7.2%}" for x in row))
        for q in (50, 95, 99):
            row = []
            for n in (50, 100, 400, 2000):
                base, cand = latencies(rng, n, min(runs, 2000), 100.0, correlated)
                floor = METRICS[f"latency_p{q}_ms"].min_n
                hits = [stats.paired_percentiles(b, c, (q,))[0][2].high <= 100 and n >= floor for b, c in zip(base, cand)]
                row.append(np.mean(hits))
            print(f"{f'latency_p{q}_ms max_delta 100 (+100 ms)':44} {model:18} " + " ".join(f"{x:7.2%}" for x in row))
    for model in ("skewed-correlated", "independent", "tokens"):
        rel, ab = [], []
        for n in (50, 100, 400, 2000):
            r = a = 0
            reps = runs if n < 2000 else runs // 4
            mean_base = 180.0 if model == "tokens" else 2.0
            for _ in range(reps):
                base, cand = mean_sample(rng, n, model)
                _, _, delta, pct = stats.paired_mean(base, cand)
                r += pct.high <= 20 and n >= pct.min_n
                a += delta.high <= 0.2 * mean_base and n >= delta.min_n
            rel.append(r / reps)
            ab.append(a / reps)
        print(f"{'mean max_delta_pct 20 (+20%)':44} {model:18} " + " ".join(f"{x:7.2%}" for x in rel))
        print(f"{'mean max_delta 0.2 x mean (+20%)':44} {model:18} " + " ".join(f"{x:7.2%}" for x in ab))


def power(runs: int) -> None:
    print("\n2. A 5-point format drop (95% -> 90% valid) at n = 400, gate min_delta -0.01, alone and as one of four")
    rng = np.random.default_rng(2)
    for correlated in (True, False):
        tables = rate_tables(rng, 400, runs, 0.05, 0.10, correlated)  # the event is "invalid"
        alone = np.mean([stats.newcombe_paired(int(d), int(c), int(b), int(a)).high < -0.01 for a, b, c, d in tables])
        four = np.mean([stats.newcombe_paired(int(d), int(c), int(b), int(a)).at(1 - 2 * 0.025 / 4).high < -0.01
                        for a, b, c, d in tables])  # fmt: skip
        model = "candidate's failures on the baseline's successes" if correlated else "independent failures"
        print(f"  {model:50} FAIL alone {alone:6.1%}   among 4 tested gates (Holm, first step) {four:6.1%}")


def pairs_to_pass(runs: int) -> None:
    print("\n3. Pairs an equal candidate needs to PASS each default gate in 80% of runs")
    rng = np.random.default_rng(3)
    sizes = [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200]

    def first(passing) -> str:
        for n in sizes:
            if passing(n) >= 0.8:
                return f"{n:,}"
        return f"> {sizes[-1]:,}"

    reps = max(100, runs // 10)
    for correlated, label in ((True, "correlated"), (False, "independent")):
        def errors(n):
            tables = rate_tables(rng, n, reps, 0.01, 0.01, correlated) if not correlated else None
            if correlated:  # the same requests fail on both arms, plus 10% of the failures move
                tables = rng.multinomial(n, [0.009, 0.001, 0.001, 0.989], size=reps)
            return np.mean([stats.newcombe_paired(*map(int, t)).high <= 0.005 for t in tables])

        def formats(n):
            if correlated:
                tables = rng.multinomial(n, [0.045, 0.005, 0.005, 0.945], size=reps)
            else:
                tables = rate_tables(rng, n, reps, 0.05, 0.05, False)
            return np.mean([stats.newcombe_paired(int(d), int(c), int(b), int(a)).low >= -0.01 for a, b, c, d in tables])

        def p99(n):
            base, cand = latencies(rng, n, reps, 0.0, correlated)
            return np.mean([n >= 437 and stats.paired_percentiles(b, c, (99,))[0][2].high <= 200 for b, c in zip(base, cand)])

        def cost(n):
            hits = 0
            for _ in range(reps):
                base = rng.gamma(4, 0.00025, n)
                cand = base * rng.lognormal(-0.02, 0.2, n) if correlated else rng.gamma(4, 0.00025, n)
                pct = stats.paired_mean(base, cand)[3]
                hits += n >= pct.min_n and pct.high <= 20
            return hits / reps

        print(f"  {label}: error_rate +0.5 pt (1% errors) {first(errors)}; format_compliance -1 pt (95% valid) "
              f"{first(formats)}; latency_p99_ms +200 ms {first(p99)}; cost_per_request_usd +20% {first(cost)}")


def aa(runs: int) -> None:
    print("\n4. A/A false FAIL: six gates, eight critical segments (54 tests), n = 960")
    spec = SegmentSpec(by=("segment",), critical=SEGMENTS)
    for correlated in (True, False):
        rng = np.random.default_rng(4 + correlated)
        reps = max(100, runs // 5)
        failed = sum(decide(SIX_GATES, simulated_run(rng, 960, correlated), spec).verdict == FAIL for _ in range(reps))
        print(f"  {'correlated' if correlated else 'independent'}: {failed / reps:.1%} of {reps} runs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    runs = 1000 if parser.parse_args().quick else 4000
    false_pass(runs)
    power(runs)
    pairs_to_pass(runs)
    aa(runs)


if __name__ == "__main__":
    main()
