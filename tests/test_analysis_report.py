"""analyze_paths, write_report and `fahflow analyze` on a results tree in the WS layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fahflow.analysis.report import AnalysisResult, analyze_paths, write_report
from fahflow.analysis.synthetic import crooks_gaussian_works, globals_csv_text
from fahflow.cli import main
from fahflow.errors import InsufficientWorkError

DATA = Path(__file__).parent / "data"
TRUTH_KT = 2.0
N_CLONES, CYCLES = 60, 2


def put(root: Path, clone: int, text: str, run: int = 0) -> Path:
    path = root / "PROJ17000" / f"RUN{run}" / f"CLONE{clone}" / "results0" / "globals.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def results_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 good CLONEs of 2 Crooks cycles, then one WU of each failure class."""
    root = tmp_path_factory.mktemp("results")
    w_F, w_R = crooks_gaussian_works(N_CLONES * CYCLES, TRUTH_KT, 1.5, np.random.default_rng(9))
    pairs = list(zip(w_F.tolist(), w_R.tolist(), strict=True))
    for clone in range(N_CLONES):
        put(root, clone, globals_csv_text(pairs[CYCLES * clone : CYCLES * (clone + 1)]))
    good = globals_csv_text([(1.0, -1.0), (1.0, -1.0)]).splitlines()
    put(root, 100, "\n".join(good[:60]) + "\n" + good[60][:20])  # cut in cycle 1
    put(root, 101, globals_csv_text([(1.0, -1.0)], global_var_freq=30_000))  # schedule mismatch
    put(root, 102, globals_csv_text([(float("nan"), -1.0), (1.0, -1.0)]))  # NaN in cycle 0
    put(root, 103, "not,a,globals,file\n1,2,3,4\n")  # unreadable
    put(root, 104, (DATA / "globals-real-core.csv").read_text())  # 150 kT works: an outlier here
    return root


@pytest.fixture(scope="module")
def result(results_tree: Path) -> AnalysisResult:
    return analyze_paths([results_tree], temperature_K=300.0, n_bootstrap=1000, seed=3)


def test_every_wu_is_classified_and_good_pairs_are_used(result: AnalysisResult) -> None:
    assert result.n_work_units == N_CLONES + 5
    assert result.status_counts == {
        "ok": N_CLONES,
        "truncated": 1,
        "schedule_mismatch": 1,
        "nan": 1,
        "unreadable": 1,
        "outlier": 1,
    }
    # Complete cycles of partly bad WUs still count: cycle 0 of CLONE100, cycle 1 of CLONE102.
    assert result.n_pairs == N_CLONES * CYCLES + 2
    by_source = {wu.key.source: wu for wu in result.work_units}
    assert "robust z" in by_source["P17000/R0/C104/G0"].reason
    assert by_source["P17000/R0/C103/G0"].status.value == "unreadable"


def test_estimate_matches_truth_with_clone_groups(result: AnalysisResult) -> None:
    estimate = result.estimate
    assert abs(estimate.Delta_f_kT - TRUTH_KT) < 3 * estimate.sigma_kT
    assert estimate.n_groups == N_CLONES + 2  # bootstrap unit: the CLONE, not the cycle
    assert estimate.n_bootstrap == 1000 and len(estimate.bootstrap_Delta_f_kT) == 1000
    assert estimate.ci_low_kT < estimate.Delta_f_kT < estimate.ci_high_kT
    assert result.temperature_K == pytest.approx(298.0)  # the files' kT, not the configured 300 K
    assert any("configured 300 K" in w for w in result.warnings)
    assert estimate.additional_cycles_for_target is not None


def test_same_seed_same_result(results_tree: Path, result: AnalysisResult) -> None:
    again = analyze_paths([results_tree], temperature_K=300.0, n_bootstrap=1000, seed=3)
    assert again.estimate.bootstrap_Delta_f_kT == result.estimate.bootstrap_Delta_f_kT


def test_outlier_check_can_be_disabled(results_tree: Path) -> None:
    loose = analyze_paths([results_tree], n_bootstrap=0, outlier_z=None)
    assert "outlier" not in loose.status_counts
    assert loose.n_pairs == N_CLONES * CYCLES + 3


def test_report_files(result: AnalysisResult, tmp_path: Path) -> None:
    json_path = write_report(result, tmp_path / "report")
    out = json_path.parent
    assert json_path.name == "result.json"
    data = json.loads(json_path.read_text())
    assert data["schema_version"] == 2
    assert data["settings"]["seed"] == 3 and data["settings"]["n_bootstrap"] == 1000
    assert {"pymbar", "numpy", "fahflow", "python"} <= set(data["versions"])
    assert len(data["work_units"]) == N_CLONES + 5
    assert AnalysisResult.model_validate_json(json_path.read_text()) == result
    for name in ("work_distributions.png", "convergence.png", "bootstrap.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "index.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert 'src="work_distributions.png"' in html and "kcal/mol" in html
    assert "P17000/R0/C101/G0" in html  # failures are listed
    works = (out / "works.csv").read_text().splitlines()
    assert works[0].startswith("project,run,clone,gen,source,cycle,w_F_kT,w_R_kT,status")
    assert len(works) == 1 + N_CLONES * CYCLES + 2 + 1 + 2 + 1 + 1  # cycles, one row per bad WU


def test_no_usable_pair_raises_with_counts(tmp_path: Path) -> None:
    put(tmp_path, 0, "")
    put(tmp_path, 1, globals_csv_text([(1.0, -1.0)], global_var_freq=30_000))
    with pytest.raises(InsufficientWorkError, match=r"2 globals.csv file\(s\) \(1 schedule_mis"):
        analyze_paths([tmp_path])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InsufficientWorkError, match=r"no globals\.csv under"):
        analyze_paths([empty])


def test_cli_prints_table_and_writes_report(
    results_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    code = main(
        [
            "analyze",
            str(results_tree),
            "--out",
            str(out),
            "--bootstrap",
            "200",
            "--seed",
            "1",
            "--temperature",
            "298",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "ΔG / kcal/mol" in captured.out and "±" in captured.out
    assert (out / "result.json").exists() and (out / "index.html").exists()
    assert json.loads((out / "result.json").read_text())["settings"]["n_bootstrap"] == 200


def test_cli_exit_code_when_nothing_to_analyze(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "no globals.csv" in capsys.readouterr().err


def test_analysis_does_not_import_openmm() -> None:
    code = (
        "import sys, fahflow.analysis.report, fahflow.analysis.estimate as e; e._pymbar(); "
        "sys.exit('openmm' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_identical_works_report_zero_error(tmp_path: Path) -> None:
    for clone in range(12):
        put(tmp_path / "in", clone, globals_csv_text([(1.25, -1.25)]))
    result = analyze_paths([tmp_path / "in"], n_bootstrap=100)
    assert result.estimate.Delta_f_kT == pytest.approx(1.25)
    assert result.estimate.sigma_kT == 0.0
    assert result.status_counts == {"ok": 12}
    out = write_report(result, tmp_path / "report").parent
    assert (out / "bootstrap.png").exists() and (out / "work_distributions.png").exists()


def test_an_unbelievable_work_is_classified_not_averaged_in(tmp_path: Path) -> None:
    # Too few pairs for the outlier score, the others nearly identical: only the bound catches it.
    for clone in range(4):
        put(tmp_path / "in", clone, globals_csv_text([(5.0 + 0.01 * clone, -4.0 - 0.01 * clone)]))
    put(tmp_path / "in", 9, globals_csv_text([(4.0e6, -4.0)]))
    result = analyze_paths([tmp_path / "in"], n_bootstrap=100)
    assert result.status_counts == {"ok": 4, "implausible": 1}
    assert result.n_pairs == 4
    assert result.estimate.Delta_f_kT < 10.0
    bad = {wu.key.source: wu for wu in result.work_units}["P17000/R0/C9/G0"]
    assert "|w_F| = 4e+06 kT beyond the plausible bound 10000 kT" in bad.reason
    assert any("1 pair(s) implausible (|W| > 10000 kT), excluded" in w for w in result.warnings)
    assert result.settings.max_abs_work_kT == 1e4
    loose = analyze_paths([tmp_path / "in"], n_bootstrap=0, max_abs_work_kT=None)
    assert loose.n_pairs == 5 and loose.settings.max_abs_work_kT is None


def test_only_unbelievable_works_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(tmp_path / "in", 0, globals_csv_text([(4.0e6, -4.0e6)]))
    with pytest.raises(InsufficientWorkError, match=r"1 implausible"):
        analyze_paths([tmp_path / "in"])
    assert main(["analyze", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 1
    assert "implausible" in capsys.readouterr().err
    loose = ["analyze", str(tmp_path / "in"), "--out", str(tmp_path / "out2")]
    assert main([*loose, "--max-abs-work", "1e7"]) == 0


def test_notes_reach_result_json_works_csv_and_the_page(tmp_path: Path) -> None:
    lines = (DATA / "globals-real-core.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    put(tmp_path / "in", 0, "\n".join([header, *rows[:9], rows[10], rows[9], *rows[11:]]) + "\n")
    for clone in range(1, 4):
        put(tmp_path / "in", clone, (DATA / "globals-real-core.csv").read_text())
    result = analyze_paths([tmp_path / "in"], n_bootstrap=0)
    assert any("1 WU(s) have notes" in w and "out of step order" in w for w in result.warnings)
    out = write_report(result, tmp_path / "report").parent
    data = json.loads((out / "result.json").read_text())
    (noted,) = [wu for wu in data["work_units"] if wu["notes"]]
    assert "line 12 (step 225000 after 250000)" in noted["notes"][0]
    assert "line 12 (step 225000 after 250000)" in (out / "index.html").read_text()
    assert "out of step order" in (out / "works.csv").read_text()


def test_cli_prints_the_estimates_warnings_and_significant_sigma(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three CLONEs with nearly identical works: sigma is a few 1e-3 kT, fewer than 10 pairs.
    for clone in range(3):
        put(tmp_path / "in", clone, globals_csv_text([(1.0 + 0.001 * clone, -1.0)]))
    code = main(["analyze", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "warning: only 3 work pair(s): errors are rough" in out
    assert "± 0.00 " not in out and "± 0.000 " not in out
    sigma = json.loads((tmp_path / "out" / "result.json").read_text())["estimate"]["sigma_kT"]
    assert 0 < sigma < 0.005
    assert f"± {sigma:.2g}" in out
