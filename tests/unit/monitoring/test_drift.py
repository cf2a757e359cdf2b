"""The drift statistics: each says "no drift" on two samples of one distribution, at about
its nominal rate, and "drift" on shifts of the size the README names."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.monitoring.drift import (
    chi2_check,
    ks_check,
    mmd_permutation_test,
    psi,
    psi_of_shares,
)


def test_ks_passes_one_distribution_and_fails_a_shift_of_a_third_of_a_deviation():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=1000)
    same = ks_check("x", ref, rng.normal(size=300), alpha=0.01)
    shifted = ks_check("x", ref, rng.normal(0.35, size=300), alpha=0.01)
    assert not same.drifted and same.p_value > 0.01
    assert shifted.drifted and shifted.p_value < 0.01
    assert shifted.current_summary["mean"] == pytest.approx(0.35, abs=0.1)


def test_psi_is_zero_for_one_sample_and_past_the_usual_bar_for_half_a_deviation():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=5000)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert psi(ref, rng.normal(size=5000)) < 0.02
    assert psi(ref, rng.normal(0.5, size=5000)) > 0.2


def test_psi_of_a_constant_reference_sees_any_other_value():
    assert psi(np.full(100, 3.0), np.full(50, 3.0)) == pytest.approx(0.0, abs=1e-6)
    assert psi(np.full(100, 3.0), np.r_[np.full(25, 3.0), np.full(25, 7.0)]) > 1.0


def test_psi_of_shares_matches_its_definition():
    r, c = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.4, 0.2])
    expected = float(np.sum((c - r) * np.log(c / r)))
    assert psi_of_shares(r, c) == pytest.approx(expected)


def test_chi2_flags_a_mode_the_reference_never_had():
    same = chi2_check("mode", ["L"] * 200, ["L"] * 50, alpha=0.01)
    new = chi2_check("mode", ["L"] * 200, ["L"] * 25 + ["RGB"] * 25, alpha=0.01)
    assert not same.drifted and same.p_value == 1.0
    assert new.drifted and new.current_summary["RGB"] == 0.5


def test_mmd_false_alarm_rate_is_at_most_its_level_and_a_shift_is_found():
    """The permutation test's p-value is valid: over 60 pairs of samples of one
    distribution, p < 0.05 about 5% of the time (at most 12% allows for chance)."""
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(400, 16))
    alarms = sum(
        mmd_permutation_test(ref, rng.normal(size=(60, 16)), permutations=199, seed=s)[1] < 0.05
        for s in range(60)
    )
    assert alarms <= 7
    shifted = rng.normal(size=(60, 16)) + np.r_[0.6, np.zeros(15)]
    assert mmd_permutation_test(ref, shifted, permutations=199, seed=0)[1] < 0.01
