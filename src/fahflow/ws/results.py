"""Which GEN's results to fetch for a finished job: moved to :mod:`fahflow.ws.layout`.

Kept so that existing imports (``from fahflow.ws.results import gen_over_api``) keep working.
"""

from fahflow.ws.layout import MAX_GENS, gen_on_disk, gen_over_api, highest_gen

__all__ = ["MAX_GENS", "gen_on_disk", "gen_over_api", "highest_gen"]
