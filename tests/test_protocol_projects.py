"""PROJECT selection by effort and PROJECT size proposals."""

from __future__ import annotations

import itertools
import math

import pytest
from pydantic import ValidationError

from fahflow.errors import ConfigError
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
