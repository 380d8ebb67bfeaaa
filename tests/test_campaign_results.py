"""`fahflow results` rendering: σ with significant figures, whole names at 80 columns, warnings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from fahflow.analysis.synthetic import crooks_gaussian_works
from fahflow.cli.render import print_results
from fahflow.outcome import Outcome, ProtocolOutcome
from fahflow.tasks import LocalQueue

REPO = Path(__file__).resolve().parents[1]
LONG_NAME = "benzene-to-toluene-in-complex-leg-replica-3"  # 43 characters, no space to wrap at


def config_for(tmp_path: Path) -> Path:
    data = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    data["tasks"]["local"]["path"] = str(tmp_path / "queue.sqlite")
    data["ledger"]["path"] = str(tmp_path / "ledger.sqlite")
    data["analysis"]["bootstrap"] = 100
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def complete_task(queue: LocalQueue, name: str, w_F: list[float], w_R: list[float]) -> None:
    (key,) = queue.submit(name, f"name: {name}\n", 1)
    queue.claim("test", 1)
    works = [
        {"key": f"P1/R0/C{i}/G0/cycle0", "group": f"P1/R0/C{i}", "w_F_kT": f, "w_R_kT": r}
        for i, (f, r) in enumerate(zip(w_F, w_R, strict=True))
    ]
    assert queue.push(key, Outcome(status="ok", temperature_K=300.0, works=works))


@pytest.fixture()
def campaign(tmp_path: Path) -> Path:
    config = config_for(tmp_path)
    queue = LocalQueue(tmp_path / "queue.sqlite")
    try:
        # Nearly identical works: σ is a few 1e-3 kT, which "± 0.00" used to hide; 3 pairs only.
        complete_task(queue, LONG_NAME, [1.000, 1.001, 1.002], [-1.0, -1.0, -1.0])
        w_F, w_R = crooks_gaussian_works(40, 2.0, 1.0, np.random.default_rng(0))
        complete_task(queue, "harmonic", w_F.tolist(), w_R.tolist())
    finally:
        queue.close()
    return config


def render(config: Path, fmt: str = "table") -> tuple[str, list[dict]]:
    console = Console(width=80, record=True, color_system=None)
    rows = print_results(config, fmt=fmt, console=console)
    return console.export_text(), rows


def test_table_keeps_names_whole_and_sigma_significant_at_80_columns(campaign: Path) -> None:
    text, rows = render(campaign)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text
    # The name may fold over several lines of its cell, but every character is there, in order.
    first_column = "".join(line.split("│")[0].strip() for line in lines if "│" in line)
    assert LONG_NAME + "harmonic" in first_column
    small = next(r for r in rows if r["transformation"] == LONG_NAME)
    assert 0 < small["sigma_kT"] < 0.005
    assert f"± {small['sigma_kT']:.2g}" in text
    assert "± 0.00 " not in text and "± 0.00\n" not in text


def test_table_prints_the_estimates_warnings(campaign: Path) -> None:
    text, rows = render(campaign)
    small = next(r for r in rows if r["transformation"] == LONG_NAME)
    assert "only 3 work pair(s): errors are rough" in small["warnings"]
    words = " ".join(text.split())  # the console wraps long lines
    assert f"warning: {LONG_NAME}: only 3 work pair(s): errors are rough" in words


def test_json_and_csv_carry_the_warnings(campaign: Path) -> None:
    text, _ = render(campaign, "json")
    by_name = {r["transformation"]: r for r in json.loads(text)}
    assert any("only 3 work pair(s)" in w for w in by_name[LONG_NAME]["warnings"])
    csv_text, _ = render(campaign, "csv")
    assert "only 3 work pair(s)" in csv_text and "['" not in csv_text


def test_a_gufe_transformation_shows_its_protocols_estimate_beside_fahflows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fahflow results` pools the Tasks' stored ProtocolDAGResults with the kind's gather and
    prints that estimate in its own column (a scripted kind: the real one is tested with gufe)."""
    import fahflow.kinds

    config = config_for(tmp_path)
    queue = LocalQueue(tmp_path / "queue.sqlite")
    stored = []
    for i in range(2):
        (key,) = queue.submit("benzene-toluene", '{"gufe": "transformation"}', 1, kind="gufe")
        queue.claim("test", 1)
        pdr = tmp_path / f"pdr{i}.json"
        protocol = ProtocolOutcome(ok=True, protocol="NonEquilibriumCyclingProtocol",
                                   protocol_dag_result=str(pdr))  # fmt: skip
        works = [{"key": f"P1/R0/C{i}/G0/cycle0", "group": f"P1/R0/C{i}", "w_F_kT": 2.0 + i,
                  "w_R_kT": -1.0 - i}]  # fmt: skip
        queue.push(key, Outcome(status="ok", temperature_K=300.0, works=works, protocol=protocol))
        stored.append(pdr)
    queue.close()

    class ScriptedKind:
        def gather(self, payload: str, results: list[Path]) -> tuple[float, float]:
            assert payload == '{"gufe": "transformation"}' and sorted(results) == stored
            return 1.23, 0.45

    monkeypatch.setattr(fahflow.kinds, "kind_for", lambda name: ScriptedKind())
    text, (row,) = render(config)
    assert (row["protocol_Delta_f_kcal_per_mol"], row["protocol_sigma_kcal_per_mol"]) == (
        1.23,
        0.45,
    )
    assert "(protocol)" in text and "1.23 ± 0.45" in text
    assert max(len(line) for line in text.splitlines()) <= 80
