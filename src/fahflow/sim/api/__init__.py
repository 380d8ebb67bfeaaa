"""The WS and AS endpoints of DESIGN §1, plus the volunteers' internal ``/sim/`` endpoints.

Split by audience: :mod:`.ws_routes` (the adaptive-sampling API), :mod:`.as_routes` (the
assignment server), :mod:`.volunteer_routes` (``/sim/*``); :mod:`.wu` packs WUs and unpacks
results, :mod:`.routing` holds the route table and :class:`Api`. Every JSON answer is a record
of :mod:`fahflow.sim.records` in the shapes on record (never the client's models). The file
layout under the simulator root is :mod:`fahflow.sim.layout`.
"""

from __future__ import annotations

from fahflow.sim.api import as_routes, volunteer_routes, ws_routes  # noqa: F401  (register routes)
from fahflow.sim.api.routing import ROUTES, Api, route

__all__ = ["ROUTES", "Api", "route"]
