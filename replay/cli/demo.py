"""``replay demo`` and ``replay mock-server``: the bundled local endpoint."""

from __future__ import annotations

import os
import time

import click

from replay.cli.options import finite_float, open_store, store_option
from replay.errors import InputError

DEMO_SCENARIO = os.path.join("scenarios", "demo.yaml")


@click.command(name="demo")
@click.option("--scenario", "scenario_path", default=DEMO_SCENARIO, show_default=True, type=click.Path(dir_okay=False))
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@store_option
def demo_command(scenario_path: str, quiet: bool, store_path: str) -> None:
    """Replay the bundled demo log against a local mock endpoint: no key, no network.

    Starts an OpenAI-compatible server on 127.0.0.1 (a free port), points the demo
    scenario's arms at it, and runs it through the real HTTP path: streaming,
    rate limits, retries and the store.

    \b
    Example:
      replay demo
    """
    from replay.scenario_file import load_scenario
    from replay.mockserver import MockServer, ServerConfig, answers_from_log, demo_candidate
    from replay.progress import make_reporter
    from replay.readers import resolve_log_paths
    from replay.runner import Engine

    if not os.path.exists(scenario_path):
        raise click.UsageError(f"{scenario_path} not found: run 'replay demo' from the repository's top folder")
    scenario = load_scenario(scenario_path)
    answers: dict[str, str] = {}
    for path in resolve_log_paths(scenario.logs, scenario.search_dirs):
        answers.update(answers_from_log(path))
    with MockServer(ServerConfig(latency_ms=120, answers=demo_candidate(answers))) as server:
        click.echo(f"demo: local OpenAI-compatible endpoint at {server.base_url}", err=True)
        overrides = {"candidate.base_url": server.base_url}
        if scenario.production is not None:
            overrides["production.base_url"] = server.base_url
        scenario = load_scenario(scenario_path, overrides)
        store = open_store(store_path, create=True)
        summary = Engine(scenario, store, reporter=make_reporter(quiet)).run()
    from replay.cli.run import summary_text, decide_and_report

    click.echo(summary_text(store, summary, store_path, scenario), err=True)
    code = decide_and_report(store, summary.run_id, {})
    click.echo(f"the demo exits 0 whatever the verdict; 'replay run' would exit {code} here", err=True)
    click.echo(f"next: replay disagreements {summary.run_id} --store {store_path}", err=True)


@click.command(name="mock-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--latency-ms", default=50.0, show_default=True, type=finite_float(0, 3_600_000),
              help="Time to answer each request.")  # fmt: skip
@click.option("--chunks", default=4, show_default=True, type=click.IntRange(1, 100_000), help="Content chunks per streamed answer.")
@click.option("--rpm", type=finite_float(0, 1e9, min_open=True), help="Enforce this many requests per minute (in one-second windows).")
@click.option("--answers", "answers_log", type=click.Path(exists=True, dir_okay=False), help="Answer with the texts of this shadow log.")
@click.option("--embedding-dims", default=64, show_default=True, type=click.IntRange(1, 8192),
              help="Dimensions of the vectors /v1/embeddings answers with.")  # fmt: skip
def mock_server_command(
    host: str, port: int, latency_ms: float, chunks: int, rpm: float | None, answers_log: str | None, embedding_dims: int
) -> None:
    """Serve a scripted OpenAI-compatible chat and embeddings endpoint until Ctrl-C (for trying replay out).

    \b
    Example:
      replay mock-server --port 8000 --answers fixtures/logs/support.jsonl
    """
    from replay.mockserver import MockServer, ServerConfig, answers_from_log

    answers = answers_from_log(answers_log) if answers_log else {}
    config = ServerConfig(latency_ms=latency_ms, chunks=chunks, rpm=rpm, answers=answers, embedding_dims=embedding_dims)
    try:
        server = MockServer(config, host=host, port=port).start()
    except OSError as exc:
        raise InputError(f"--port {port}: cannot serve on {host}:{port} ({exc.strerror or exc})") from None
    click.echo(f"serving {server.base_url} (Ctrl-C to stop)", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


COMMANDS = [demo_command, mock_server_command]
