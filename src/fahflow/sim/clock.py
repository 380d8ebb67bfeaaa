"""The simulated clock: project timeouts (≥300 s) run ``scale`` times faster, and tests may jump it.

Only timeouts use this clock. Job ``last`` stamps are real UTC time, so ``jobs?since=`` works
across a restart. The clock's lead over real time is saved by the store and restored on restart,
so a restarted simulator never moves its clock backwards.
"""

from __future__ import annotations

import threading
import time


class SimClock:
    """``now()`` = real epoch seconds, sped up by ``scale`` since start, plus jumps."""

    def __init__(self, scale: float = 1.0, lead_s: float = 0.0) -> None:
        self.scale = scale
        self._start = time.time()
        self._lead = lead_s
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            real = time.time()
            return real + (real - self._start) * (self.scale - 1.0) + self._lead

    def advance(self, seconds: float) -> None:
        """Jump forward by ``seconds`` of simulated time (never backwards)."""
        if seconds < 0:
            raise ValueError(f"the clock only advances, got {seconds} s")
        with self._lock:
            self._lead += seconds

    def real_seconds(self, sim_seconds: float) -> float:
        """How long in real time ``sim_seconds`` of simulated time take."""
        return max(sim_seconds, 0.0) / self.scale

    @property
    def lead_s(self) -> float:
        """How far the simulated clock is ahead of real time."""
        return self.now() - time.time()
