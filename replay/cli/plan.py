"""``replay plan``: what the gates need and what the run would cost, before sending anything."""

from __future__ import annotations

import json
from typing import Any

import click

from replay.cli.options import scenario_options, scenario_overrides


@click.command(name="plan")
@click.argument("scenario", required=False, type=click.Path(dir_okay=False))
@scenario_options
@click.option("--gates", "gates_file", type=click.Path(exists=True, dir_okay=False),
              help="Plan the gates of this YAML file (a 'gates:' list) instead of the scenario's.")  # fmt: skip
@click.option("--skip-invalid", is_flag=True, help="Skip malformed log lines (counted) instead of stopping.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (field names: see the README).")
def plan_command(scenario: str | None, gates_file: str | None, skip_invalid: bool, as_json: bool,
                 **flags: Any) -> None:  # fmt: skip
    """Read the logs (nothing is sent, nothing stored) and say, for each gate, how many
    pairs it needs to PASS a candidate equal to the baseline, what it will most likely
    say at the configured sample, and what the run costs and how long it takes.

    Takes the scenario and the flags of 'replay run', and samples exactly as it would.

    \b
    Examples:
      replay plan scenarios/support-bot.yaml
      replay plan scenarios/support-bot.yaml --sample 1 --json
    """
    from replay.cli.decide import load_gates_file
    from replay.plan import make_plan, plan_json
    from replay.scenario_file import load_scenario

    gates = load_gates_file(gates_file).gates if gates_file else None
    config = load_scenario(scenario, {**scenario_overrides(flags), "gates": gates})
    plan = make_plan(config, skip_invalid=skip_invalid)
    if as_json:
        click.echo(json.dumps(plan_json(plan), indent=2))
        return
    from replay.cli.reporting import print_renderables
    from replay.reports.plan import plan_renderables

    print_renderables(plan_renderables(plan))


COMMANDS = [plan_command]
