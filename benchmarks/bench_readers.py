"""Reader speed and peak memory, per format, on the same support-bot records.

    python benchmarks/bench_readers.py [--records 100000 | --gigabytes 1] [--formats shadow,litellm,...]

Each format's fixture lines (fixtures/logs/<format>/) are repeated with fresh ids into a temporary
file until it holds ``--records`` requests (or, with ``--gigabytes``, until its files hold that
much: the issue's bar is set on 1 GB of each format); each file, generated once and deleted
after, is read in a fresh process (as ``replay logs validate`` reads it: every record checked,
the answer not parsed) and the wall time, CPU time and peak RSS printed, with the speed (records per CPU second: on a shared machine, what the read
costs whatever else runs; ``--repeat`` keeps each format's fastest read) relative to ``shadow``.
The issue's bar: at least half of shadow's records per second, peak memory under 200 MB.
``--compare DIR`` reads each file with the package in DIR too (the previous code's worktree), in
turn with this one, so both see the same file and the same load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGS = os.path.join(ROOT, "fixtures", "logs")
SOURCES = {
    "shadow": (["support.jsonl"], "id"),
    "openai-batch": (["openai-batch/batch_in.jsonl", "openai-batch/batch_out.jsonl"], "custom_id"),
    "anthropic-batch": (["anthropic-batch/requests.jsonl", "anthropic-batch/results.jsonl"], "custom_id"),
    "litellm": (["litellm/standard_logging.jsonl"], "id"),
    "langfuse": (["langfuse/observations_v1.jsonl"], "id"),
    "langsmith": (["langsmith/runs.jsonl"], "id"),
    "helicone": (["helicone/export.jsonl"], "request_id"),
    "otel-genai": (["otel-genai/traces.jsonl"], None),
    "openai-responses": (["openai-responses/pairs.jsonl"], "id"),
}


_ID = "\u0000replay-bench-id\u0000"


def _template(obj: dict, key: str | None) -> tuple[str, str]:
    """The line as JSON text with a placeholder where each copy's fresh id goes, and the id's prefix."""
    if key is None:  # OTLP: every span gets a fresh id
        return json.dumps(obj).replace('"spanId": "a1b2c3d4e5f6', '"spanId": "' + _ID), ""
    return json.dumps({**obj, key: _ID}).replace(json.dumps(_ID), '"' + _ID + '"'), str(obj[key])


def _fresh(template: tuple[str, str], n: int) -> str:
    text, prefix = template
    if not prefix:
        return text.replace(_ID, f"{n:08x}-")
    return text.replace(_ID, json.dumps(f"{prefix}-{n}")[1:-1])


def generate(fmt: str, records: int, folder: str, size: float = 0) -> list[str]:
    """The format's files holding ``records`` requests, or ``size`` bytes when given."""
    names, key = SOURCES[fmt]
    sources = [[_template(json.loads(line), key) for line in open(os.path.join(LOGS, name))] for name in names]
    per_copy = max(1, len(sources[0]))
    copy_bytes = sum(len(_fresh(template, 0)) + 1 for lines in sources for template in lines)
    copies = math.ceil(size / copy_bytes) if size else records // per_copy + 1
    paths = []
    for name, lines in zip(names, sources):
        path = os.path.join(folder, f"{fmt}-{os.path.basename(name)}")
        with open(path, "w") as handle:
            for copy in range(copies):
                handle.writelines(_fresh(template, copy) + "\n" for template in lines)
        paths.append(path)
    return paths


def measure(fmt: str, paths: list[str], code: str = ROOT) -> tuple[float, float, int, float]:
    """Wall seconds, CPU seconds (user + system: what the read costs, whatever else the machine
    runs), records and peak RSS in MB of one read in a fresh process, with the package in ``code``."""
    script = ("import resource, time; from replay.readers import ReadStats, iter_records;"
            "stats = ReadStats(); t = time.perf_counter(); c = time.process_time();"
            f"[None for _ in iter_records({paths!r}, fmt={fmt!r}, stats=stats, skip_invalid=True)];"
            "print(time.perf_counter() - t, time.process_time() - c, stats.records,"
            " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=code,
                         env={**os.environ, "PYTHONPATH": code})  # fmt: skip
    seconds, cpu, count, peak_kb = out.stdout.split()
    return float(seconds), float(cpu), int(count), int(peak_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--gigabytes", type=float, default=0.0,
                        help="generate this much of each format instead of --records (the issue's bar: 1)")
    parser.add_argument("--repeat", type=int, default=1, help="read each file this many times, keep the fastest")
    parser.add_argument("--formats", default=",".join(SOURCES))
    parser.add_argument("--compare", metavar="DIR", help="also read each file with the replay package in DIR"
                        " (a worktree of the previous code), alternating with this one")  # fmt: skip
    args = parser.parse_args()
    formats = args.formats.split(",")
    trees = {"": ROOT, **({"old ": os.path.abspath(args.compare)} if args.compare else {})}
    with tempfile.TemporaryDirectory() as folder:
        shadow_rates: dict[str, float] = {}
        print(f"{'format':22} {'records':>9} {'MB':>7} {'s':>6} {'cpu s':>6} {'rec/s':>9} {'vs shadow':>9} {'peak MB':>8}")
        for fmt in formats:
            paths = generate(fmt, args.records, folder, args.gigabytes * 2**30)
            size = sum(os.path.getsize(path) for path in paths) / 2**20
            runs: dict[str, list[tuple[float, float, int, float]]] = {tree: [] for tree in trees}
            for _ in range(args.repeat):  # each tree in turn: the machine's drift spreads over both
                for tree, code in trees.items():
                    runs[tree].append(measure(fmt, paths, code))
            for tree in trees:
                seconds, cpu, count, peak = min(runs[tree], key=lambda run: run[1])  # the least CPU
                rate = count / cpu  # per CPU second: another process on the machine does not count
                if fmt == "shadow":
                    shadow_rates[tree] = rate
                ratio = f"{rate / shadow_rates[tree]:.2f}" if tree in shadow_rates else "-"
                print(f"{tree + fmt:22} {count:9,} {size:7.0f} {seconds:6.2f} {cpu:6.2f} {rate:9,.0f} {ratio:>9} {peak:8.0f}",
                      flush=True)  # fmt: skip
            for path in paths:
                os.unlink(path)


if __name__ == "__main__":
    main()
