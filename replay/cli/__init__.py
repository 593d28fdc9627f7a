"""The ``replay`` command: a thin click layer over the library, one module per command group.

Library errors (:class:`replay.errors.ReplayError`) become one ``Error: ...`` line on
stderr with the error's exit code (2 for bad input, 3 for a run that did not
complete), its control characters shown as escapes (a message may quote a log or an
endpoint); anything unexpected too, except under pytest or with REPLAY_RAISE_ERRORS,
where the traceback is kept so bugs are never hidden.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import click

from replay import __version__
from replay.errors import keep_tracebacks


class ReplayClickError(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        # click declares exit_code on the class; this error's code is its own, and click reads the instance's
        self.exit_code = exit_code  # type: ignore[misc]


class ReplayGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from replay.errors import ReplayError
        from replay.reports.escape import visible

        try:
            return super().invoke(ctx)
        except ReplayError as exc:
            raise ReplayClickError(visible(exc), exc.exit_code) from exc
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:
            if keep_tracebacks():
                raise
            raise ReplayClickError(visible(f"unexpected {type(exc).__name__}: {exc}"), 1) from exc


@click.group(cls=ReplayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="replay")
def cli() -> None:
    """Replay production LLM traffic against a candidate model, store every outcome, and decide.

    \b
    Quick start (no API key, no network):
      replay demo
    Ad-hoc comparison:
      replay run --logs prod.jsonl --candidate-url http://127.0.0.1:8000/v1 --candidate-model m
    """


def _register() -> None:
    from replay.cli import decide, demo, export, judge, logs, plan, purge, review, run, runs

    for module in (run, plan, runs, decide, judge, review, export, logs, demo, purge):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    try:
        cli(prog_name="replay")
    except BrokenPipeError:
        # The reader went away (``replay export ... | head``): not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    finally:
        _spare_the_last_collection()


def _spare_the_last_collection() -> None:
    """The interpreter's shutdown ends with a garbage collection over everything a command
    built (a run's or a report's data, with no cycles left to find), about a tenth of a
    second after a 2,000-request run. Freezing the heap first leaves it out; everything
    else about the shutdown (atexit handlers, closing files) happens as usual."""
    gc.freeze()

