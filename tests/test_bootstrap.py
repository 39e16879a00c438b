"""Bootstrap intervals, paired tests and Holm correction (downstream/bootstrap.py)."""

import numpy as np
import pytest

from downstream import bootstrap


def test_mean_interval_covers_the_true_mean_about_95_percent_of_the_time():
    """Over 400 synthetic samples (n = 40, skewed: gamma(4) with true mean 4), each with its own seed."""
    rng = np.random.default_rng(123)
    hits = 0
    trials = 400
    for seed in range(trials):
        values = rng.gamma(4.0, 1.0, size=40)
        low, high = bootstrap.mean_interval(values, n_resamples=1000, seed=seed)
        assert low < values.mean() < high
        hits += low <= 4.0 <= high
    coverage = hits / trials
    # binomial sd at 95 % over 400 trials is 1.1 %; the percentile bootstrap runs slightly narrow at n = 40
    assert 0.91 <= coverage <= 0.98, coverage


def test_resampling_is_seeded_and_statistics_share_the_image_lists():
    a = bootstrap.resample_indices(7, 50, seed=3)
    assert a.shape == (50, 7) and np.array_equal(a, bootstrap.resample_indices(7, 50, seed=3))
    assert not np.array_equal(a, bootstrap.resample_indices(7, 50, seed=4))
    values = np.arange(7.0) ** 2
    by_lists = bootstrap.statistic_replicates(7, lambda idx: float(np.mean(values[idx])), 50, seed=3)
    assert np.allclose(by_lists, bootstrap.mean_replicates(values, a))


def test_paired_comparison_of_a_method_with_itself_is_not_significant():
    values = np.random.default_rng(0).normal(30, 2, size=12)
    idx = bootstrap.resample_indices(12)
    rep = bootstrap.mean_replicates(values, idx)
    result = bootstrap.paired_comparison(rep, rep, delta=0.0)
    assert result == {"delta": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}


def test_paired_comparison_finds_a_consistent_shift_and_not_noise():
    rng = np.random.default_rng(1)
    base = rng.normal(30, 3, size=12)  # large spread between images ...
    better = base + 0.5 + rng.normal(0, 0.05, 12)  # ... but every image gains about 0.5
    idx = bootstrap.resample_indices(12)
    shifted = bootstrap.paired_comparison(
        bootstrap.mean_replicates(better, idx),
        bootstrap.mean_replicates(base, idx),
        delta=float(np.mean(better - base)),
    )
    assert shifted["ci_low"] > 0.4 and shifted["ci_high"] < 0.6
    assert shifted["p_value"] == pytest.approx(2 / (1 + bootstrap.N_RESAMPLES))  # no replicate at or below zero
    noise = base + rng.normal(0, 0.5, 12) * np.where(np.arange(12) % 2, 1, -1)
    plain = bootstrap.paired_comparison(
        bootstrap.mean_replicates(noise, idx), bootstrap.mean_replicates(base, idx), delta=float(np.mean(noise - base))
    )
    assert plain["ci_low"] < 0 < plain["ci_high"] and plain["p_value"] > 0.05


def test_holm_matches_a_hand_computed_case():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    adjusted = bootstrap.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    with_nan = bootstrap.holm([0.01, float("nan"), 0.04])
    assert np.isnan(with_nan[1]) and with_nan[[0, 2]] == pytest.approx([0.02, 0.04])
    assert bootstrap.holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])


def test_intervals_of_empty_or_undefined_replicates_are_nan():
    assert all(np.isnan(bootstrap.mean_interval([])))
    assert all(np.isnan(bootstrap.percentile_interval(np.array([np.nan, np.nan]))))
    assert np.isnan(bootstrap.bootstrap_p_value(np.array([np.nan])))
