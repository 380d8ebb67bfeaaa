"""Where the simulated WS keeps a project's files: the one module that spells the layout.

Under the simulator root (DESIGN §1; the real WS's exact layout is unverified)::

    PROJ{p}/                              project home ($home in the send list)
    PROJ{p}/RUN{r}/...                    RUN inputs (core.xml, system/state/integrator .xml.bz2)
    PROJ{p}/RUN{r}/CLONE{c}/...           CLONE inputs
    PROJ{p}/RUN{r}/CLONE{c}/results{g}/   returned results of GEN g
"""

from __future__ import annotations

from pathlib import Path, PurePath

RESULTS_PREFIX = "results"


def project_home(root: Path, project: int) -> Path:
    return root / f"PROJ{project}"


def clone_dir(root: Path, project: int, run: int, clone: int) -> Path:
    return project_home(root, project) / f"RUN{run}" / f"CLONE{clone}"


def results_dir(root: Path, project: int, run: int, clone: int, gen: int) -> Path:
    return clone_dir(root, project, run, clone) / f"{RESULTS_PREFIX}{gen}"


def is_results(relative: PurePath) -> bool:
    """Whether a path relative to a project home lies in returned results
    (``RUN*/CLONE*/results*/...``), which the project's input listing leaves out."""
    parts = relative.parts
    return len(parts) > 3 and parts[2].startswith(RESULTS_PREFIX)
