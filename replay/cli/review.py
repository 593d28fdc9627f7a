"""``replay review export`` and ``replay review import``: blinded human verdicts."""

from __future__ import annotations

import click

from replay.cli.options import open_store, store_option


@click.group(name="review")
def review_group() -> None:
    """Blinded human review of candidate vs baseline answers."""


@review_group.command(name="export")
@click.argument("run_ref", metavar="RUN", default="latest")
@click.option("--n", "n", type=click.IntRange(1), default=200, show_default=True, help="Pairs to sample.")
@click.option("--out", "out_prefix", default="review", show_default=True,
              help="Writes OUT.csv and OUT.jsonl (the same items).")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--include-identical", is_flag=True, help="Also sample pairs whose answers match after normalising.")
@store_option
def review_export_command(run_ref: str, n: int, out_prefix: str, seed: int, include_identical: bool, store_path: str) -> None:
    """Write a blinded sample: answers shown as A and B in a random order per pair,
    stratified by the run's first segment_by key. Fill in 'verdict' with A, B or tie.

    \b
    Example:
      replay review export latest --n 200 --out review
    """
    from replay.review import export_review

    summary = export_review(open_store(store_path), run_ref, n, out_prefix, seed, include_identical)
    parts = ", ".join(f"{k} {v}" for k, v in sorted(summary.per_segment.items()))
    click.echo(f"wrote {summary.items} items from run {summary.run_id} ({parts}) to {' and '.join(summary.paths)}")
    if summary.identical:
        click.echo(f"left out {summary.identical} pairs with identical answers (ties; --include-identical keeps them)",
                   err=True)  # fmt: skip
    click.echo("the A/B key stays in the store; import the filled-in file with: replay review import FILE", err=True)


@review_group.command(name="import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--reviewer", default="reviewer", show_default=True, help="Name recorded when the file has no reviewer column.")
@store_option
def review_import_command(path: str, reviewer: str, store_path: str) -> None:
    """Record the verdicts of a filled-in review file (CSV or JSONL) and print the human win rate.

    \b
    Example:
      replay review import review.csv --reviewer dana
    """
    from replay.evaluate import human_win_rate
    from replay.reports.format import interval, value
    from replay.review import import_reviews

    store = open_store(store_path)
    summary = import_reviews(store, path, reviewer)
    click.echo(f"recorded {summary.recorded} verdicts ({summary.blank} left blank)")
    for run_id in summary.runs:
        estimate, counts = human_win_rate(store, run_id)
        if estimate is not None:
            click.echo(f"run {run_id}: candidate win rate {value('rate', estimate.value)} "
                       f"{interval('rate', estimate, False)}, n={estimate.n} ({counts['candidate']} candidate, "
                       f"{counts['baseline']} baseline, {counts['tie']} ties)")  # fmt: skip


COMMANDS = [review_group]
