"""Redaction benchmark: what ``redact: true`` adds to a run's local CPU time.

    python benchmarks/bench_redact.py [--n 2000] [--rounds 4]

``replay run`` of the same N records (a support bot's system prompt, a customer message, a
logged answer; a third of them holding an email, a phone number, a card, an IBAN, an IP, with
order numbers, dates and prices everywhere) against a local endpoint in its own process that
echoes the customer's message (so the arm's answers carry the personal data too: the
worst case). The figure is the replay process's CPU time (user + system, from ``wait4``),
with and without ``redact: true``, alternated ``--rounds`` times because this machine's speed
drifts by up to 30% over a minute; the median of each. Target: redaction adds <= 30%.
Also the redactor alone, per record (request, metadata, logged answer, one arm's answer).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_engine import free_port, serve  # noqa: E402

ECHO_SERVER = """
import sys, time
from replay.mockserver import MockServer, ServerConfig, last_user_text
config = ServerConfig(latency_ms=float(sys.argv[2]), respond=lambda body: "Thanks for writing. " + last_user_text(body))
MockServer(config, port=int(sys.argv[1])).start()
while True:
    time.sleep(3600)
"""

SYSTEM = (
    "You are the support assistant of an online shop. Answer in two or three sentences, politely, in the"
    " customer's language. Never promise refunds above 200 EUR without a supervisor; orders ship within 2-3"
    " business days (version 4.2.1 of the policy, updated 2026-03-01). For returns, link the returns page;"
    " for invoices, say they are sent by email within 24 hours. Prices include VAT (19%), e.g. 1,299.99 EUR."
)  # fmt: skip
PERSONAL = [
    "my email is jane.doe{i}@example.com and my phone +44 20 7946 {i:04d}",
    "please charge card 4111 1111 1111 1111 again, or IBAN DE89 3704 0044 0532 0130 00",
    "I wrote from 203.0.113.{ip} yesterday, call me on (555) 123-{i:04d}",
]


def write_log(path: str, n: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            personal = PERSONAL[i % 3].format(i=i % 10_000, ip=i % 250) if i % 3 == 0 else "no details to share"
            user = (f"Hello, order {100_000 + i} from 2026-11-{1 + i % 28:02d} has not arrived; the tracking page says"
                    f" 'in transit' since 10:3{i % 10}. It cost 49.90 EUR. {personal}. What can you do?")  # fmt: skip
            handle.write(json.dumps({
                "id": f"r{i}",
                "request": {"model": "gpt-4o-mini", "max_tokens": 120,
                            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]},
                "response": {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                             "content": f"Sorry about order {100_000 + i}. It left our warehouse on 2026-11-02 and"
                                        " should arrive within two days; if not, reply here and we will resend it."}}],
                             "usage": {"prompt_tokens": 180, "completion_tokens": 40, "total_tokens": 220}},
                "latency_ms": 700, "metadata": {"category": "shipping", "customer": f"cust-{i % 500}"},
            }) + "\n")  # fmt: skip


def run_cpu(log: str, url: str, store: str, redact: bool) -> float:
    """CPU seconds (user + system) of one ``replay run`` process."""
    scenario = os.path.join(os.path.dirname(store), f"scenario-{'on' if redact else 'off'}.yaml")
    with open(scenario, "w", encoding="utf-8") as handle:
        handle.write(f"name: bench\nlogs: {log}\ncandidate: {{base_url: '{url}', model: gpt-4o-mini}}\n"
                     f"limits: {{concurrency: 64}}\ngates: []\n" + ("redact: true\n" if redact else ""))  # fmt: skip
    if os.path.exists(store):
        os.unlink(store)
    proc = subprocess.Popen([sys.executable, "-m", "replay", "run", scenario, "--store", store, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"replay run failed with exit status {status}")
    return usage.ru_utime + usage.ru_stime


def redactor_alone(log: str) -> float:
    """Microseconds per record for the redactor by itself (record, then one echoed answer)."""
    from replay.privacy import Redaction, Redactor
    from replay.readers import iter_records
    from replay.types import Completion, Outcome

    records = list(iter_records([log]))
    redactor = Redactor(Redaction())
    answers = [Outcome(r.id, "candidate", "ok", Completion("Thanks. " + r.request["messages"][1]["content"]), (), {})
               for r in records]  # fmt: skip
    started = time.process_time()
    for record, answer in zip(records, answers):
        _, marks = redactor.record(record)
        redactor.outcome(answer, marks)
    return (time.process_time() - started) / len(records) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="replay-bench-redact-")
    log = os.path.join(tmp, "log.jsonl")
    write_log(log, args.n)
    port = free_port()
    proc, url = serve([sys.executable, "-c", ECHO_SERVER, str(port), str(args.latency_ms)], port, "echo server")
    figures: dict[bool, list[float]] = {False: [], True: []}
    try:
        run_cpu(log, url, os.path.join(tmp, "warm.db"), False)  # bytecode compiled, caches warm
        for round_ in range(args.rounds):
            for redact in ((False, True) if round_ % 2 == 0 else (True, False)):
                figures[redact].append(run_cpu(log, url, os.path.join(tmp, "run.db"), redact))
    finally:
        proc.terminate()
        proc.wait()
    off, on = statistics.median(figures[False]), statistics.median(figures[True])
    shown = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    print(f"replay run of {args.n} records, CPU seconds per run ({args.rounds} rounds, alternated):")
    print(f"  without redaction: {shown(figures[False])}  median {off:.2f}s")
    print(f"  with redact: true: {shown(figures[True])}  median {on:.2f}s")
    overhead = on / off - 1
    print(f"  redaction adds {overhead:+.1%} (target <= +30%) {'ok' if overhead <= 0.30 else 'SLOW'}")
    print(f"redactor alone: {redactor_alone(log):.0f} us per record (request, metadata, logged answer, one answer)")


if __name__ == "__main__":
    main()
