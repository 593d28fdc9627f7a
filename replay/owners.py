"""Who runs a run: a lease in the store (pid, host, a token, a heartbeat), so that two
processes never run one run and a run whose process died can be told from a running one."""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

LEASE_S = 30.0
"""A run's owner renews its lease every ``HEARTBEAT_S``; one not renewed for this long is taken over."""
HEARTBEAT_S = 5.0
ABANDONED = "abandoned"
"""The status shown for a run stored as ``running`` that no live process owns (killed, crashed,
machine restarted): ``replay run --resume`` finishes it."""


@dataclass(frozen=True)
class Owner:
    """The process running a run, as its lease in the store names it."""

    pid: int
    host: str
    token: str
    heartbeat_at: float

    @classmethod
    def this_process(cls) -> "Owner":
        return cls(os.getpid(), socket.gethostname(), uuid.uuid4().hex, time.time())

    def values(self) -> tuple[Any, ...]:
        return (self.pid, self.host, self.token, self.heartbeat_at)

    def alive(self) -> bool:
        """Renewed within ``LEASE_S`` and, on this host, its process still exists (a ``kill -9``
        frees the run at once; a process on another host is trusted until its lease expires)."""
        if time.time() - self.heartbeat_at > LEASE_S:
            return False
        return self.host != socket.gethostname() or _pid_alive(self.pid)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, last seen {max(time.time() - self.heartbeat_at, 0):.0f}s ago"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
