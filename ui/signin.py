"""Sign-in throttling for the dashboard: each wrong password from a client
doubles the wait before its next try (1 s, 2 s, 4 s ... at most 60 s), so a
password cannot be guessed at speed. Failures are logged, without the password."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

log = logging.getLogger("automations.dashboard")

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0


@dataclass
class _Record:
    failures: int = 0
    not_before: float = 0.0  # monotonic time of the next allowed try


class SignInThrottle:
    """Per-client failure counts, shared by every session of the dashboard."""

    def __init__(self) -> None:
        self._clients: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def wait_for(self, client: str, now: float) -> float:
        """Seconds `client` must still wait before trying a password (0: go on)."""
        with self._lock:
            record = self._clients.get(client)
            return max(0.0, record.not_before - now) if record else 0.0

    def failed(self, client: str, now: float) -> float:
        """Count a wrong password; returns the wait before the next try."""
        with self._lock:
            record = self._clients.setdefault(client, _Record())
            record.failures += 1
            delay = min(FIRST_DELAY_S * 2 ** (record.failures - 1), MAX_DELAY_S)
            record.not_before = now + delay
            failures = record.failures
        log.warning("wrong dashboard password from %s (%d in a row); next try in %.0f s", client, failures, delay)
        return delay

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)
