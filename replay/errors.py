"""Exceptions raised by the library; the CLI turns them into one-line messages.

    ReplayError
    ├── InputError          bad input from the user: exit code 2
    │   ├── LogFormatError      a malformed shadow-log line (carries path and line)
    │   ├── ScenarioError       a bad scenario key or value (carries path and key)
    │   ├── StoreError          unknown run id, unreadable store, a store of a newer version
    │   │   └── StoreWriteError     the store refused a write (disk full, read-only, altered schema)
    │   ├── RunInUse            another live process owns the run
    │   └── LogChanged          a resume whose log no longer holds the run's requests
    └── RunIncomplete       the run stopped before every request had an outcome: exit code 3
        ├── ArmStopped          a fatal provider answer (401/403, insufficient_quota)
        ├── StoreFailed         the store refused to record outcomes: dispatching stopped
        ├── RunTakenOver        another process took the run over (this one was stopped too long)
        ├── EndpointUnreachable an arm never reached its endpoint (exit code 2: a bad URL)
        ├── EmbeddingsFailed    the embeddings endpoint stopped answering: pairs left without a vector
        ├── BudgetExhausted     the next request would have passed ``budget_usd``
        └── Interrupted         Ctrl-C or SIGTERM
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from replay.types import Location


class ReplayError(Exception):
    """Base class of every error the CLI reports without a traceback."""

    exit_code = 1


class InputError(ReplayError):
    """The user's input (a file, a flag, a key) is wrong; nothing was sent."""

    exit_code = 2


class LogFormatError(InputError):
    """A shadow-log line that cannot be read as a record."""

    def __init__(self, location: Location, reason: str) -> None:
        self.location, self.reason = location, reason
        super().__init__(f"{location}: {reason}")

    @property
    def path(self) -> str:
        return self.location.path

    @property
    def line(self) -> int | None:
        return self.location.line


class ScenarioError(InputError):
    """A scenario key that is unknown, missing or of the wrong type."""


class StoreError(InputError):
    """The store cannot answer the question asked (unknown run, bad path)."""


class StoreWriteError(StoreError):
    """A write the store refused: ``database or disk is full``, a read-only file, an altered schema."""


class RunInUse(InputError):
    """Another process that is still alive owns the run (``replay run --resume`` on a live run)."""


class LogChanged(InputError):
    """On resume, sampled records changed or disappeared from the log since the run started."""


class ComparisonFailed(ReplayError):
    """Comparing stored pairs failed (a comparator raised, a worker process died)."""


class RunIncomplete(ReplayError):
    """The run ended before every sampled request had an outcome; it can be resumed."""

    exit_code = 3
    status = "failed"

    def __init__(self, message: str, run_id: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(message)


class ArmStopped(RunIncomplete):
    """An arm got an answer that retrying cannot fix (bad key, no quota)."""


class StoreFailed(RunIncomplete):
    """The store refused to record outcomes, so dispatching stopped; the message names the
    store, the cause and the requests a resume will re-send."""


class RunTakenOver(RunIncomplete):
    """This process's lease on the run expired (it was stopped for longer than the lease) and
    another process took the run over: this one stops dispatching."""


class EndpointUnreachable(RunIncomplete):
    """An arm failed every request it sent on connection errors: a wrong URL or a dead server."""

    exit_code = 2


class EmbeddingsFailed(RunIncomplete):
    """The embeddings endpoint was unreachable or refused for good (bad key, no quota): the
    answers are stored, some pairs have no semantic similarity, and embedding them again sends
    only their texts."""


class BudgetExhausted(RunIncomplete):
    """Dispatching stopped because the next request could pass ``budget_usd``."""

    status = "budget_exhausted"


class Interrupted(RunIncomplete):
    """Ctrl-C or SIGTERM stopped dispatching."""

    status = "interrupted"


def keep_tracebacks() -> bool:
    """Whether an unexpected exception must surface with its traceback instead of one line:
    under the test suite, or with ``REPLAY_RAISE_ERRORS`` set, so bugs are never hidden."""
    return bool(os.environ.get("REPLAY_RAISE_ERRORS")) or "pytest" in sys.modules and getattr(sys, "_called_from_test", False)
