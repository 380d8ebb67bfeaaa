"""The demo's final comparison: each bundled example's estimate next to what is known of it.

The demo itself runs end to end in tests/test_snakemake_side.py (slow); these pin the lines it
prints from the rows of ``fahflow.campaign.transformation_results``.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from fahflow import demo

GUFE_ROW = {
    "transformation": "benzene_to_toluene_feflow",
    "Delta_f_kT": 1.5,
    "sigma_kT": 0.4,
    "Delta_f_kcal_per_mol": 0.89,
    "sigma_kcal_per_mol": 0.24,
    "protocol": "feflow.protocols.nonequilibrium_cycling.NonEquilibriumCyclingProtocol",
    "protocol_Delta_f_kcal_per_mol": 1.29,
    "protocol_sigma_kcal_per_mol": 0.32,
}


@pytest.fixture()
def printed(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr(demo, "console", Console(file=out, width=300, color_system=None))
    return out


def test_gufe_row_shows_the_protocols_estimate_beside_fahflows(printed: io.StringIO) -> None:
    demo._compare_with_references([GUFE_ROW])
    line = printed.getvalue().strip()
    assert line == (
        "benzene_to_toluene_feflow: NonEquilibriumCyclingProtocol's gathered ΔG = 1.29 ± 0.32 "
        "kcal/mol; fahflow's BAR ΔG = 0.89 ± 0.24 kcal/mol (1.0 combined σ apart)"
    )


def test_gufe_row_without_a_bar_estimate_says_why(printed: io.StringIO) -> None:
    row = {k: v for k, v in GUFE_ROW.items() if "kcal" not in k or k.startswith("protocol")}
    del row["Delta_f_kT"], row["sigma_kT"]
    row["error"] = "no usable work pair"
    demo._compare_with_references([row])
    assert printed.getvalue().strip().endswith("; fahflow's BAR: no usable work pair")


def test_spec_examples_keep_their_references(printed: io.StringIO) -> None:
    harmonic = {"transformation": "harmonic", "Delta_f_kT": 8.3, "sigma_kT": 0.1}
    water = {
        "transformation": "water",
        "Delta_f_kT": 10.6,
        "sigma_kT": 0.5,
        "Delta_f_kcal_per_mol": 6.3,
        "sigma_kcal_per_mol": 0.3,
    }
    unknown = {"transformation": "mine", "Delta_f_kT": 1.0, "sigma_kT": 0.1}
    demo._compare_with_references([harmonic, water, unknown, {"transformation": "failed"}])
    lines = printed.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("harmonic: ΔF = 8.30 ± 0.10 kT; exact 8.318 kT (0.2 σ away)")
    assert lines[1].startswith("water: the estimate is ΔG(decouple), so ΔG_hyd = -6.30 ± 0.30")
