"""benchmarks.real_stats: its estimators recover known noise and stripe amplitudes, and (on ../shared/data) no
severity of noise / stripe / agc lies beyond every real LWIR frame."""

import numpy as np
import pytest

from benchmarks.real_stats import frame_stats, noise_sigma, stripe_sigma, tables


def test_estimators_recover_known_noise_and_stripes():
    rng = np.random.default_rng(0)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    scene = 100 + 40 * np.sin(xx / 50) * np.cos(yy / 35)  # smooth content the estimators must ignore
    noisy = scene + rng.normal(0, 2.0, (h, w))
    assert noise_sigma(noisy) == pytest.approx(2.0 * 0.9, rel=0.1)  # the flattest 10 % of blocks read ~0.9 sigma
    striped = scene + rng.normal(0, 1.5, (1, w)) + rng.normal(0, 0.5, (h, 1))
    assert stripe_sigma(striped, 1) == pytest.approx(1.5, rel=0.15)
    assert stripe_sigma(striped, 0) == pytest.approx(0.5, rel=0.15)
    stats = frame_stats(np.clip(noisy, 0, 255))
    assert stats["span"] == pytest.approx(np.percentile(noisy, 99.5) - np.percentile(noisy, 0.5), rel=1e-6)


@pytest.mark.slow
def test_no_severity_lies_beyond_every_real_frame(shared_data):
    text, problems = tables(shared_data, count=2)
    assert problems == []
    assert "**all real** | 375" in text
