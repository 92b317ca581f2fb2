"""Failed sign-ins counted per account and per address, so that passwords cannot be guessed at speed.

The counts live in the web process's memory: each process of a deployment counts on its own, so with N
processes behind a load balancer a guesser gets up to N times the limits (docs/web.md says so). A
refused sign-in costs no password hash, so a guesser cannot spend the server's CPU either.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

#: How many accounts or addresses each table keeps; past it, the oldest are forgotten first.
MAX_KEYS = 10_000


class LoginThrottle:
    """A sliding window of failed sign-ins per account and per address."""

    def __init__(
        self,
        per_account: int,
        per_address: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._limits = {"account": per_account, "address": per_address}
        self._failures: dict[str, dict[str, deque[float]]] = {"account": {}, "address": {}}
        self._lock = threading.Lock()

    def wait_s(self, account: str, address: str) -> int:
        """Seconds before ``account`` may try to sign in again from ``address``; 0 when it may now."""
        now = self.clock()
        with self._lock:
            waits = [self._wait(kind, key, now) for kind, key in (("account", account), ("address", address))]
        return max(waits)

    def failed(self, account: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for kind, key in (("account", account), ("address", address)):
                table = self._failures[kind]
                times = table.pop(key, None) or deque(maxlen=self._limits[kind])
                times.append(now)
                table[key] = times  # re-inserted: the table is ordered by last failure
                if len(table) > MAX_KEYS:
                    del table[next(iter(table))]

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures["account"].pop(account, None)

    def _wait(self, kind: str, key: str, now: float) -> int:
        times = self._failures[kind].get(key)
        if times is None or len(times) < self._limits[kind]:
            return 0
        # The limit's worth of failures: the oldest of them has to leave the window first.
        return max(0, math.ceil(times[0] + self.window_s - now))
