"""Which GEN's results to fetch for a finished job.

fahflow's projects run one GEN (``gens = 1``), so the results are GEN 0's. What a real WS
reports as a finished one-GEN job's ``gen`` is not known: alchemiscale-fah's mock reports 1
where the simulator reports 0 (docs/simulator.md). So the GEN is never read from the job: it
is the highest GEN for which results are present, probing upward, and GEN 0 when no later one
is (a missing file is then reported by the fetch).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from string import Template

from fahflow.errors import NotFound

MAX_GENS = 64  # probing stops here: fahflow never runs more GENs than this per job


def highest_gen(has_results: Callable[[int], bool]) -> int:
    """The highest g such that GENs 1..g all have results (a WS that counts GENs from 1 or
    ran more than one), else 0. One probe for a one-GEN job numbered from 0."""
    gen = 0
    while gen + 1 < MAX_GENS and has_results(gen + 1):
        gen += 1
    return gen


def gen_on_disk(clone_results: str, project_home: Path, run: int, clone: int) -> int:
    """The GEN to collect from the WS data directory: ``clone_results`` is the ``ws.results``
    template (``$home/RUN$run/CLONE$clone/results$gen``)."""

    def has(gen: int) -> bool:
        rel = Template(clone_results).substitute(home="", run=run, clone=clone, gen=gen)
        return (project_home / rel.lstrip("/") / "globals.csv").is_file()

    return highest_gen(has)


def gen_over_api(list_gen_files: Callable[[int], list]) -> int:
    """The GEN to collect through the WS API: ``list_gen_files(g)`` lists GEN g's files."""

    def has(gen: int) -> bool:
        try:
            return any(Path(f.path).name == "globals.csv" for f in list_gen_files(gen))
        except NotFound:
            return False

    return highest_gen(has)
