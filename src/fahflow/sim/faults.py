"""Seeded fault decisions, so a rehearsal with faults can be replayed exactly.

What happens to an assignment depends only on (seed, PRCG, assignment number), never on thread
timing: the same config gives the same vanished, faulty, slow and duplicated WUs on every run.
HTTP faults draw from one seeded sequence in the order calls arrive.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass

from fahflow.sim.config import FaultConfig


@dataclass(frozen=True)
class Behaviour:
    """What the volunteer that receives an assignment will do with it."""

    vanish: bool = False
    faulty: bool = False
    duplicate_rows: bool = False
    slow_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def behaviour(
    faults: FaultConfig, seed: int, project: int, run: int, clone: int, gen: int, assigns: int
) -> Behaviour:
    """The fate of assignment number ``assigns`` of a PRCG, independent of call order."""
    rng = random.Random(f"{seed}:{project}:{run}:{clone}:{gen}:{assigns}")
    draws = [rng.random() for _ in range(4)]  # always four draws: rates do not shift each other
    return Behaviour(
        vanish=draws[0] < faults.vanish_rate,
        faulty=draws[1] < faults.faulty_return_rate,
        duplicate_rows=draws[2] < faults.duplicate_rows_rate,
        slow_s=faults.slow_s if faults.slow_s > 0 and draws[3] < faults.slow_rate else 0.0,
    )


class HttpFaults:
    """Draws, per API call, whether to answer 503, drop before or drop after processing."""

    def __init__(self, faults: FaultConfig, seed: int) -> None:
        self.faults = faults
        self._rng = random.Random(f"{seed}:http")
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        """``"503"``, ``"drop"``, ``"drop_after"`` or ``None`` for a normal answer."""
        f = self.faults
        if not (f.http_503_rate or f.drop_rate or f.drop_after_rate):
            return None
        with self._lock:
            x = self._rng.random()
        if x < f.http_503_rate:
            return "503"
        if x < f.http_503_rate + f.drop_rate:
            return "drop"
        if x < f.http_503_rate + f.drop_rate + f.drop_after_rate:
            return "drop_after"
        return None
