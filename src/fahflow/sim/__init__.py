"""A Folding@home work server + assignment server simulator, with volunteers running OpenMM.

``from fahflow.sim import Simulator, SimConfig, FaultConfig``; see ``docs/simulator.md`` for what
is verified against FAH sources and what is our assumption. ``run_core`` (the OpenMM core
emulation) is in :mod:`fahflow.sim.core` and is imported lazily because OpenMM is heavy.
"""

from fahflow.sim.config import DEFAULT_SEND, FaultConfig, SimConfig
from fahflow.sim.simulator import Simulator

__all__ = ["DEFAULT_SEND", "FaultConfig", "SimConfig", "Simulator"]
