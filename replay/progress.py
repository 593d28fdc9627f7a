"""Progress for ``replay run``: a live rich bar on a terminal, plain lines elsewhere.

Everything here goes to stderr, so stdout stays clean for data. Warnings may quote an
endpoint (a model name, an error message): they are escaped like any report text.
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING

from replay.providers.openai_policy import rejected_parameter_hint, rejected_parameters
from replay.reports.escape import markup, visible
from replay.runner import Reporter
from replay.types import ARM_NOISE, ARM_PRODUCTION, Outcome

if TYPE_CHECKING:  # rich is imported when a terminal shows the progress, not before
    from rich.progress import TaskID


class ParameterHints:
    """Once per arm and parameter an endpoint refuses (``seed``, ``stream_options``), the line
    that says so and how to stop sending it: read from the error outcomes, so nothing is retried."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def hint(self, outcome: Outcome) -> str | None:
        params = rejected_parameters(outcome.http_status, outcome.error_message, outcome.params)
        arm = ARM_PRODUCTION if outcome.arm == ARM_NOISE else outcome.arm  # the noise floor is production's
        new = [param for param in params if (arm, param) not in self.seen]
        if not new:
            return None
        self.seen.update((arm, param) for param in new)
        return rejected_parameter_hint(arm, new, outcome.http_status, outcome.error_message or "")


class PlainReporter(Reporter):
    """For CI logs and pipes: a line at the start, warnings, and nothing per request."""

    def __init__(self, stream: IO[str] | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.errors = 0
        self.hints = ParameterHints()

    def start(self, run_id: str, planned: int, to_send: int, resumed: bool) -> None:
        if not self.quiet:
            verb = "resuming" if resumed else "run"
            print(f"{verb} {run_id}: {planned} sampled requests, {to_send} to send", file=self.stream)

    def outcome(self, outcome: Outcome, spent_usd: float) -> None:
        if outcome.status != "ok":
            self.errors += 1
            hint = self.hints.hint(outcome)
            if hint:
                self.warn(hint)

    def warn(self, message: str) -> None:
        print(f"warning: {visible(message)}", file=self.stream)


class RichReporter(Reporter):
    """done/total, rate, ETA, errors and spend, redrawn in place on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        if self.console.is_terminal:
            # two columns free for the terminal's echo of Ctrl-C ("^C"): on a full-width line it
            # would wrap, and the next redraw would leave the old progress line on screen
            self.console.width = max(self.console.width - 2, 20)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>6.1f} req/s"),
            TextColumn("errors {task.fields[errors]}"),
            TextColumn("{task.fields[spent]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.unpriced = False
        self.errors = 0
        self.hints = ParameterHints()
        self.done = 0
        self.t0 = time.monotonic()

    def start(self, run_id: str, planned: int, to_send: int, resumed: bool) -> None:
        verb = "resuming" if resumed else "run"
        self.console.print(f"{verb} [bold]{markup(run_id)}[/]: {planned} sampled requests, {to_send} to send")
        self.progress.start()
        self.task = self.progress.add_task("replaying", total=to_send, rate=0.0, errors=0, spent="$0.0000")
        self.t0 = time.monotonic()

    def outcome(self, outcome: Outcome, spent_usd: float) -> None:
        self.done += 1
        if outcome.status != "ok":
            self.errors += 1
            hint = self.hints.hint(outcome)
            if hint:
                self.warn(hint)
        self.unpriced = self.unpriced or (outcome.status == "ok" and outcome.cost_usd is None)
        rate = self.done / max(time.monotonic() - self.t0, 1e-6)
        if self.task is not None:
            self.progress.update(self.task, advance=1, rate=rate, errors=self.errors,
                                 spent=spend_text(spent_usd, self.unpriced))  # fmt: skip

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {markup(message)}")

    def stop(self) -> None:
        self.progress.stop()


def spend_text(spent_usd: float, unpriced: bool) -> str:
    """The spend so far; an answer from a model without a price makes it unknown, not $0."""
    if not unpriced:
        return f"${spent_usd:.4f}"
    return f"${spent_usd:.4f} + unknown" if spent_usd else "spend unknown"


def make_reporter(quiet: bool) -> Reporter:
    if not quiet and sys.stderr.isatty() and sys.stdout.isatty():
        return RichReporter()
    return PlainReporter(quiet=quiet)
