"""Where the work server keeps a job's files: the one module on the client side that knows.

The WS data directory holds one folder per PROJECT, ``PROJ{p}/``, the ``$home`` of its
``<send>`` list. The files a WU is packed from are where that list says (``ws.send``, e.g.
``$home/RUN$run/core.xml``), and a returned GEN's files land where ``ws.results`` says
(``$home/RUN$run/CLONE$clone/results$gen``); both are templates over ``$home``, ``$project``,
``$run``, ``$clone`` and ``$gen``, expanded only by :func:`send_path`.

fahflow mirrors the WS layout ``PROJ{p}/RUN{r}/CLONE{c}/results{g}/`` when it collects results
(under ``results/tasks/<task>/globals/``), whatever ``ws.results`` says, because the analysis
reads each file's PRCG from that path (:data:`RESULT_FILE`).

Which GEN to collect is never read from the job: fahflow's projects run one GEN (``gens = 1``),
so the results are GEN 0's, but what a real WS reports as a finished one-GEN job's ``gen`` is not
known (alchemiscale-fah's mock reports 1 where the simulator reports 0, docs/simulator.md). It is
the highest GEN for which results are present, probing upward (:func:`highest_gen`), and GEN 0
when no later one is (a missing file is then reported by the fetch).

The simulator has its own copy of this layout on purpose (``fahflow.sim`` must not import the
client side: a misreading shared by both would never be caught).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from string import Template

from fahflow.errors import ConfigError, NotFound

#: The variables a ``<send>`` or ``results`` template may use.
SEND_VARIABLES = ("home", "project", "run", "clone", "gen")

MAX_GENS = 64  # probing stops here: fahflow never runs more GENs than this per job

#: A file inside a mirrored ``PROJ{p}/RUN{r}/CLONE{c}/results{g}/`` folder; groups p, r, c, g.
RESULT_FILE = re.compile(r"PROJ(\d+)[/\\]RUN(\d+)[/\\]CLONE(\d+)[/\\]results(\d+)[/\\][^/\\]+$")


def send_path(template: str, project: int, run: int, clone: int = 0, gen: int = 0) -> str:
    """A ``<send>``-style template as a path relative to the PROJECT's home (``$home`` = "").

    Raises :class:`ConfigError` naming the template and the variables it may use when it has
    another one (the WS would refuse the same entry).
    """
    values = {"home": "", "project": project, "run": run, "clone": clone, "gen": gen}
    try:
        path = Template(template).substitute(values)
    except (KeyError, ValueError) as exc:
        allowed = ", ".join(f"${name}" for name in SEND_VARIABLES)
        raise ConfigError(
            f"ws.send/ws.results entry {template!r}: unknown or malformed variable {exc}; "
            f"the WS substitutes only {allowed}"
        ) from None
    return path.lstrip("/")


def project_dir(project: int) -> str:
    """The PROJECT's home folder in the WS data directory (``$home``)."""
    return f"PROJ{project}"


def ws_file(project: int, rel: str) -> str:
    """A file's path in the WS data directory, as stage records it: ``PROJ{p}/<rel>``."""
    return f"{project_dir(project)}/{rel}"


def clone_dir(project: int, run: int, clone: int) -> PurePosixPath:
    """``PROJ{p}/RUN{r}/CLONE{c}``: where a collected job's ``results{g}`` folders go."""
    return PurePosixPath(project_dir(project), f"RUN{run}", f"CLONE{clone}")


def results_dir(project: int, run: int, clone: int, gen: int) -> PurePosixPath:
    """``PROJ{p}/RUN{r}/CLONE{c}/results{g}``: one collected GEN of a job."""
    return clone_dir(project, run, clone) / f"results{gen}"


def gen_of(results_folder: Path | PurePosixPath) -> int:
    """The GEN of a ``results{g}`` folder (:func:`results_dir`)."""
    return int(results_folder.name.removeprefix("results"))


def collected_results(root: Path, project: int, run: int, clone: int) -> Path | None:
    """The highest ``results{g}`` folder of a job collected under ``root``, if any."""
    found = list((root / clone_dir(project, run, clone)).glob("results*"))
    return max(found, key=gen_of) if found else None


def highest_gen(has_results: Callable[[int], bool]) -> int:
    """The highest g such that GENs 1..g all have results (a WS that counts GENs from 1 or
    ran more than one), else 0. One probe for a one-GEN job numbered from 0."""
    gen = 0
    while gen + 1 < MAX_GENS and has_results(gen + 1):
        gen += 1
    return gen


def gen_on_disk(results_template: str, data_dir: Path, project: int, run: int, clone: int) -> int:
    """The GEN to collect from the WS data directory ``data_dir``: ``results_template`` is
    ``ws.results`` (``$home/RUN$run/CLONE$clone/results$gen``)."""

    def has(gen: int) -> bool:
        rel = send_path(results_template, project, run, clone, gen)
        return (data_dir / project_dir(project) / rel / "globals.csv").is_file()

    return highest_gen(has)


def gen_over_api(list_gen_files: Callable[[int], list]) -> int:
    """The GEN to collect through the WS API: ``list_gen_files(g)`` lists GEN g's files."""

    def has(gen: int) -> bool:
        try:
            return any(Path(f.path).name == "globals.csv" for f in list_gen_files(gen))
        except NotFound:
            return False

    return highest_gen(has)
