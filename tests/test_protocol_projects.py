"""PROJECT selection by effort and PROJECT size proposals."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import pytest
from pydantic import ValidationError

from fahflow.errors import ConfigError
from fahflow.nonbonded import NONBONDED_METHODS, canonical_method
from fahflow.protocol.projects import ProjectSlot, effort, propose_project_sizes, select_project

PROJECTS = [
    ProjectSlot(id=10003, atoms=50_000, nonbonded_method="PME"),
    ProjectSlot(id=10001, atoms=5_000, nonbonded_method="PME"),
    ProjectSlot(id=10002, atoms=20_000, nonbonded_method="PME"),
    ProjectSlot(id=10010, atoms=100, nonbonded_method="NoCutoff"),
    ProjectSlot(id=10011, atoms=2_000, nonbonded_method="NoCutoff"),
]


def test_effort_scaling() -> None:
    assert effort(1000, "PME") == pytest.approx(1000 * math.log(1000))
    assert effort(1000, "NoCutoff") == 1000**2
    assert effort(1000, "pme") == effort(1000, "PME")
    assert effort(1, "PME") > 0
    with pytest.raises(ConfigError, match="'Magic' is not one of"):
        effort(10, "Magic")
    with pytest.raises(ConfigError, match="atom count must be positive, got 0"):
        effort(0, "PME")


@pytest.mark.parametrize(
    ("atoms", "method", "project"),
    [
        (774, "PME", 10001),
        (5_000, "PME", 10001),  # equal effort fits
        (5_001, "PME", 10002),
        (20_000, "PME", 10002),
        (49_999, "PME", 10003),
        (4, "NoCutoff", 10010),
        (101, "NoCutoff", 10011),
    ],
)
def test_smallest_project_whose_effort_is_enough(atoms: int, method: str, project: int) -> None:
    assert select_project(atoms, method, PROJECTS).id == project


def test_none_fits_names_system_and_projects() -> None:
    with pytest.raises(ConfigError) as info:
        select_project(60_000, "PME", PROJECTS)
    message = str(info.value)
    assert "60000 atoms" in message and "10003 (50000 atoms, PME)" in message
    with pytest.raises(ConfigError, match="no configured PROJECT fits a LJPME system"):
        select_project(10, "LJPME", PROJECTS)
    with pytest.raises(ConfigError, match="configured projects: none"):
        select_project(10, "PME", [])


def test_ties_go_to_the_lower_id() -> None:
    twins = [
        ProjectSlot(id=7, atoms=1000, nonbonded_method="PME"),
        ProjectSlot(id=3, atoms=1000, nonbonded_method="PME"),
    ]
    assert select_project(10, "PME", twins).id == 3


def test_project_slot_validation() -> None:
    slot = ProjectSlot.model_validate({"id": 1, "atoms": 10, "nonbonded_method": "nocutoff"})
    assert slot.nonbonded_method == "NoCutoff"
    with pytest.raises(ValidationError, match="nonbonded_method"):
        ProjectSlot(id=1, atoms=10, nonbonded_method="Reaction")
    with pytest.raises(ValidationError, match="atoms"):
        ProjectSlot(id=1, atoms=0, nonbonded_method="PME")


@pytest.mark.parametrize("method", ["PME", "NoCutoff"])
def test_proposed_sizes_are_evenly_spaced_in_effort(method: str) -> None:
    sizes = propose_project_sizes(1_000, 100_000, 6, method)
    assert sizes[0] == 1_000 and sizes[-1] == 100_000 and sizes == sorted(sizes)
    efforts = [effort(n, method) for n in sizes]
    gaps = [b - a for a, b in itertools.pairwise(efforts)]
    assert max(gaps) / min(gaps) == pytest.approx(1.0, rel=0.01)
    # each size is the smallest atom count reaching its effort rung
    step = (efforts[-1] - efforts[0]) / 5
    for i, n in enumerate(sizes[1:-1], start=1):
        assert effort(n, method) >= efforts[0] + i * step > effort(n - 1, method)


def test_proposal_edge_cases() -> None:
    assert propose_project_sizes(500, 500, 3) == [500]
    assert propose_project_sizes(10, 5_000, 1) == [5_000]
    with pytest.raises(ConfigError, match="min_atoms=10, max_atoms=5"):
        propose_project_sizes(10, 5, 3)
    with pytest.raises(ConfigError, match="count must be at least 1, got 0"):
        propose_project_sizes(10, 50, 0)


def test_config_and_project_selection_agree_on_method_names() -> None:
    """One canonicaliser (fahflow.nonbonded) for the config and PROJECT selection."""
    for spelling, canonical in [("pme", "PME"), (" NoCutoff ", "NoCutoff"), ("ljpme", "LJPME")]:
        assert canonical_method(spelling) == canonical
        assert ProjectSlot(id=1, atoms=10, nonbonded_method=spelling).nonbonded_method == canonical
    assert set(NONBONDED_METHODS) == {
        "PME", "LJPME", "CutoffPeriodic", "CutoffNonPeriodic", "Ewald", "NoCutoff",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="'PPPM' is not one of PME, LJPME"):
        canonical_method("PPPM")


def test_loading_the_config_does_not_import_the_protocol_layer() -> None:
    """``fahflow.config`` sits below the protocol layer: validating a PROJECT's method must not
    pull in ``fahflow.protocol`` (which a batch step that never builds WUs does not need)."""
    code = (
        "import sys\n"
        "from fahflow.config import ProjectSettings\n"
        "s = ProjectSettings(id=1, atoms=10, nonbonded_method='pme', contact='a@b', credit=1)\n"
        "assert s.nonbonded_method == 'PME', s\n"
        "print(sorted(m for m in sys.modules if m.startswith('fahflow.protocol')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
