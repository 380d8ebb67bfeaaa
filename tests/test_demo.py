"""The demo's own logic: what it submits, and its final comparison of each bundled example's
estimate with what is known of it.

The demo itself runs end to end in tests/test_snakemake_side.py (slow); these pin the lines it
prints from the rows of ``fahflow.campaign.transformation_results``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from fahflow import demo
from fahflow.campaign import task_rows
from fahflow.config import load_config

REPO = Path(__file__).resolve().parents[1]

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


def _config(tmp_path: Path) -> Path:
    """config/config.yaml with its queue, ledger and results in ``tmp_path``."""
    data = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    data["tasks"]["local"]["path"] = str(tmp_path / "queue.sqlite")
    data["ledger"]["path"] = str(tmp_path / "ledger.sqlite")
    data["batch"]["results_dir"] = str(tmp_path / "results")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_examples_go_to_an_empty_queue_only(tmp_path: Path, printed: io.StringIO) -> None:
    """A second demo carries on with the first one's campaign, and says so rather than
    seeming to run the example it was asked for."""
    path = _config(tmp_path)
    config = load_config(path)
    demo._submit_examples(path, config, ["harmonic"])
    assert [r["transformation"] for r in task_rows(config)] == ["harmonic"] * 4
    assert "submitted 4 Task(s) of the harmonic example" in printed.getvalue()
    demo._submit_examples(path, config, ["water"])
    assert len(task_rows(config)) == 4
    said = " ".join(printed.getvalue().split())
    assert f"the queue {tmp_path / 'queue.sqlite'} already holds 4 Task(s)" in said
    assert "not submitting water" in said
