"""``replay judge``: judge the stored pairs of a run that have no verdict yet."""

from __future__ import annotations

import click

from replay.cli.options import open_store, store_option


@click.command(name="judge")
@click.argument("run_ref", metavar="[RUN]", default="latest")
@store_option
def judge_command(run_ref: str, store_path: str) -> None:
    """Judge the pairs of a stored run (RUN: an id, a prefix or 'latest', the default) that its
    judge has not judged yet: pairs answered before a resume, judge errors, a judging that
    stopped. Verdicts already stored are never paid again; 'replay report' shows them.

    \b
    Example:
      replay judge latest && replay report latest
    """
    from replay.reports.escape import visible
    from replay.stages.judge import judge_stored

    store = open_store(store_path)
    done = judge_stored(store, run_ref, warn=lambda message: click.echo(visible(message), err=True))
    click.echo(visible(f"run {done.run_id}: {done.calls} judge request(s), {done.errors} judge error(s),"
                       f" ${done.spent_usd:.4f} spent"), err=True)  # fmt: skip


COMMANDS = [judge_command]
