"""Bounded app sessions: a model's memory estimated before it is built, and session slots.

One browser session asking for a million agents on a dense graph would otherwise take the
server (and every other visitor's session) down with it. Before building, the estimate of
:mod:`simulator.memory_plan` (the networkx graph the app draws from included) is compared with
the server's limits: :meth:`Limits.check` refuses a configuration above them with a message for
the page; the previous model stays.

The limits come from ``simulator app`` flags (``--max-agents``, ``--max-memory``,
``--max-sessions``), passed to the server process as environment variables.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from simulator.config import ParameterError
from simulator.memory_plan import Estimate, estimate, expected_edges

__all__ = ["ENV", "Estimate", "Limits", "SessionSlots", "estimate", "expected_edges"]

ENV = {
    "max_agents": "NEUROPOP_APP_MAX_AGENTS",
    "max_memory_mb": "NEUROPOP_APP_MAX_MEMORY_MB",
    "max_sessions": "NEUROPOP_APP_MAX_SESSIONS",
}


@dataclass(frozen=True)
class Limits:
    """What one session may build, and how many sessions may run at once.

    Parameters
    ----------
    max_agents : int
        Largest ``n_agents`` (or nodes of a given graph) a session may build.
    max_memory_mb : float
        Largest estimated memory of one session's model, in MiB.
    max_sessions : int
        Browser sessions served at once; one more sees a "server busy" message.
    """

    max_agents: int = 100_000
    max_memory_mb: float = 1024.0
    max_sessions: int = 4

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Limits:
        """The limits the ``simulator app`` command set (environment), else the defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field, var in ENV.items():
            if env.get(var):
                kind = float if field == "max_memory_mb" else int
                values[field] = kind(env[var])
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        return {var: str(getattr(self, field)) for field, var in ENV.items()}

    def check(self, cls: type, params: dict[str, Any]) -> Estimate:
        """The estimate for ``cls(**params)``; a ParameterError if it exceeds these limits."""
        est = estimate(cls, params)
        if est.n_agents > self.max_agents:
            raise ParameterError(
                f"n_agents={est.n_agents:,} is over this server's limit of {self.max_agents:,} "
                "agents per session (the `simulator app --max-agents` flag)"
            )
        if est.total > self.max_memory_mb * 2**20:
            raise ParameterError(
                f"this configuration needs {est.describe()}, over this server's limit of "
                f"{self.max_memory_mb:,.0f} MiB per session (`simulator app --max-memory`); "
                "fewer agents, a sparser graph or smaller networks fit"
            )
        return est


class SessionSlots:
    """At most ``limit`` sessions hold a slot at once (thread-safe; one per server process)."""

    def __init__(self, limit: int):
        self.limit = max(int(limit), 1)
        self._held: set[int] = set()
        self._lock = threading.Lock()

    def acquire(self, owner: int) -> bool:
        """Take a slot for ``owner`` (an id); True if it has one (again), False if full."""
        with self._lock:
            if owner in self._held:
                return True
            if len(self._held) >= self.limit:
                return False
            self._held.add(owner)
            return True

    def release(self, owner: int) -> None:
        with self._lock:
            self._held.discard(owner)

    @property
    def used(self) -> int:
        return len(self._held)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
