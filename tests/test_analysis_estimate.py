"""BAR estimate: known answers by z-score, bootstrap coverage, degenerate inputs, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from fahflow.analysis.estimate import (
    _pymbar,
    additional_cycles,
    bar_estimate,
    bootstrap_bar,
    solve_bar_weighted,
)
from fahflow.analysis.synthetic import crooks_gaussian_works
from fahflow.analysis.units import KCAL_PER_KJ, kT_kJ_per_mol
from fahflow.errors import ConfigError, InsufficientWorkError


@pytest.mark.parametrize(("delta_f", "sigma"), [(1.0, 1.0), (-4.0, 2.0), (150.0, 1.5)])
def test_bar_recovers_crooks_delta_f_within_3_sigma(delta_f: float, sigma: float) -> None:
    rng = np.random.default_rng(42)
    w_F, w_R = crooks_gaussian_works(500, delta_f, sigma, rng)
    result = bar_estimate(w_F, w_R, temperature_K=300.0, n_bootstrap=200, seed=1)
    z = (result.Delta_f_kT - delta_f) / result.dDelta_f_kT
    assert abs(z) < 3, (result.Delta_f_kT, result.dDelta_f_kT)
    assert result.n_forward == result.n_reverse == result.n_groups == 500
    # EXP estimates are biased but must land near the truth for this modest dissipation.
    assert abs(result.exp_forward.Delta_f_kT - delta_f) < 5 * result.exp_forward.dDelta_f_kT + 0.1
    assert abs(result.exp_reverse.Delta_f_kT - delta_f) < 5 * result.exp_reverse.dDelta_f_kT + 0.1
    # Dissipation is sigma^2 / 2 in each direction for these Gaussians.
    assert result.diagnostics.dissipation_forward_kT == pytest.approx(sigma**2 / 2, abs=0.3)
    assert result.diagnostics.dissipation_reverse_kT == pytest.approx(sigma**2 / 2, abs=0.3)


def test_vectorized_solver_agrees_with_pymbar() -> None:
    rng = np.random.default_rng(7)
    w_F, w_R = crooks_gaussian_works(3000, 2.5, 2.0, rng)
    reference = _pymbar().bar(w_F, w_R, relative_tolerance=1e-14)["Delta_f"]
    ours = solve_bar_weighted(w_F, w_R, np.ones((1, w_F.size)), x0=-50.0)
    assert ours[0] == pytest.approx(reference, abs=1e-8)
    # Weights are multiplicities: doubling a pair equals repeating it.
    weights = np.ones((1, w_F.size))
    weights[0, :10] = 2.0
    repeated = _pymbar().bar(
        np.concatenate([w_F, w_F[:10]]), np.concatenate([w_R, w_R[:10]]), relative_tolerance=1e-14
    )["Delta_f"]
    assert solve_bar_weighted(w_F, w_R, weights)[0] == pytest.approx(repeated, abs=1e-8)


def test_identical_works_give_zero_plus_minus_zero() -> None:
    result = bar_estimate(np.zeros(20), np.zeros(20), temperature_K=300.0, seed=0)
    assert result.Delta_f_kT == 0.0
    assert result.dDelta_f_kT == 0.0
    assert result.dDelta_f_bootstrap_kT == 0.0
    assert (result.ci_low_kT, result.ci_high_kT) == (0.0, 0.0)
    assert result.to_kcal_per_mol() == (0.0, 0.0)
    constant = bar_estimate(np.full(8, 3.0), np.full(8, -3.0), temperature_K=300.0)
    assert (constant.Delta_f_kT, constant.sigma_kT) == (3.0, 0.0)


def test_single_pair_has_an_estimate_but_no_error() -> None:
    result = bar_estimate([1.0], [-0.5], temperature_K=300.0)
    assert result.Delta_f_kT == pytest.approx(0.75)
    assert math.isnan(result.dDelta_f_kT)
    assert result.dDelta_f_bootstrap_kT is None
    assert any("one bootstrap group" in w for w in result.diagnostics.warnings)
    assert '"NaN"' in result.model_dump_json()  # valid JSON that reads back
    assert math.isnan(type(result).model_validate_json(result.model_dump_json()).dDelta_f_kT)


def test_units_at_the_actual_temperature() -> None:
    rng = np.random.default_rng(3)
    w_F, w_R = crooks_gaussian_works(100, 2.0, 1.0, rng)
    result = bar_estimate(w_F, w_R, temperature_K=298.0, n_bootstrap=0)
    kT = kT_kJ_per_mol(298.0)
    # The real core file's kT for 298 K, computed with CODATA 2006's R (1.2e-6 apart).
    assert result.kT_kJ_per_mol == pytest.approx(2.47771279642362, rel=2e-6)
    assert result.to_kJ_per_mol() == pytest.approx(
        (result.Delta_f_kT * kT, result.dDelta_f_kT * kT)
    )
    assert result.to_kcal_per_mol()[0] == pytest.approx(result.Delta_f_kT * kT * KCAL_PER_KJ)
    assert result.sigma_kT == result.dDelta_f_kT  # no bootstrap: the analytical error


def test_bootstrap_is_seeded_and_resamples_whole_groups() -> None:
    rng = np.random.default_rng(11)
    w_F, w_R = crooks_gaussian_works(200, 1.0, 1.5, rng)
    a = bootstrap_bar(w_F, w_R, n_bootstrap=300, seed=5)
    b = bootstrap_bar(w_F, w_R, n_bootstrap=300, seed=5)
    c = bootstrap_bar(w_F, w_R, n_bootstrap=300, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Four identical cycles per CLONE: resampling CLONEs sees 200 independent units, resampling
    # cycles would pretend 800 and shrink the error by about 2.
    w_F4, w_R4 = np.repeat(w_F, 4), np.repeat(w_R, 4)
    clones = np.repeat(np.arange(200), 4)
    by_clone = np.std(bootstrap_bar(w_F4, w_R4, clones, n_bootstrap=400, seed=5))
    by_cycle = np.std(bootstrap_bar(w_F4, w_R4, None, n_bootstrap=400, seed=5))
    by_pair = np.std(bootstrap_bar(w_F, w_R, None, n_bootstrap=400, seed=5))
    assert by_clone == pytest.approx(by_pair, rel=0.2)
    assert by_cycle == pytest.approx(by_pair / 2, rel=0.2)


def test_bootstrap_interval_covers_the_truth_in_200_repeats() -> None:
    truth, hits = 1.5, 0
    for repeat in range(200):
        rng = np.random.default_rng(1000 + repeat)
        w_F, w_R = crooks_gaussian_works(100, truth, 1.5, rng)
        result = bar_estimate(w_F, w_R, temperature_K=300.0, n_bootstrap=1000, seed=repeat)
        hits += result.ci_low_kT <= truth <= result.ci_high_kT
    assert hits >= 180, f"95% intervals covered the truth in {hits} of 200 repeats"


def test_additional_cycles_for_a_target_error() -> None:
    assert additional_cycles(0.2, 100, 0.1) == 300  # error halves with 4x the cycles
    assert additional_cycles(0.05, 100, 0.1) == 0
    assert additional_cycles(float("nan"), 1, 0.1) == 0
    rng = np.random.default_rng(2)
    w_F, w_R = crooks_gaussian_works(50, 0.0, 2.0, rng)
    result = bar_estimate(w_F, w_R, temperature_K=300.0, n_bootstrap=100, target_sigma_kT=0.05)
    expected = math.ceil(50 * (result.sigma_kT / 0.05) ** 2) - 50
    assert result.additional_cycles_for_target == expected > 0


def test_diagnostics_flag_poor_overlap_and_second_law_violation() -> None:
    far = bar_estimate(
        np.linspace(50, 51, 30), -np.linspace(40, 41, 30), temperature_K=300, n_bootstrap=0
    )
    assert far.diagnostics.overlap < 0.03
    assert any("overlap" in w for w in far.diagnostics.warnings)
    backwards = bar_estimate(
        np.linspace(-5, -4, 30), -np.linspace(-1, 0, 30) + 0, temperature_K=300, n_bootstrap=0
    )
    assert backwards.diagnostics.hysteresis_kT < 0
    assert any("second law" in w for w in backwards.diagnostics.warnings)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(InsufficientWorkError, match="no usable"):
        bar_estimate([], [], temperature_K=300)
    with pytest.raises(ConfigError, match="paired"):
        bar_estimate([1.0, 2.0], [1.0], temperature_K=300)
    with pytest.raises(ConfigError, match="finite"):
        bar_estimate([1.0, float("nan")], [1.0, 2.0], temperature_K=300)
    with pytest.raises(ConfigError, match="confidence"):
        bar_estimate([1.0, 2.0], [1.0, 2.0], temperature_K=300, confidence=1.5)
    with pytest.raises(ConfigError, match="n_bootstrap"):
        bar_estimate([1.0, 2.0], [1.0, 2.0], temperature_K=300, n_bootstrap=-1)
    with pytest.raises(ConfigError, match="3 labels for 2"):
        bootstrap_bar([1.0, 2.0], [1.0, 2.0], groups=["a", "b", "c"])


def test_docstring_examples_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest
    from pathlib import Path

    import fahflow.analysis.estimate
    import fahflow.analysis.globals

    monkeypatch.chdir(Path(__file__).parent.parent)  # the examples name tests/data/...
    for module in (fahflow.analysis.estimate, fahflow.analysis.globals):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__


def test_disjoint_works_give_no_runtime_warning_on_stderr() -> None:
    # pymbar's error formula divides 0 by 0 here; the result says so, numpy must not shout.
    w_F = np.array([5.0, 5.01, 5.02, 5.03, 4.0e6])
    w_R = np.array([-4.0, -4.01, -4.02, -4.03, -4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = bar_estimate(w_F, w_R, temperature_K=300.0, n_bootstrap=0)
    assert math.isfinite(result.Delta_f_kT)
