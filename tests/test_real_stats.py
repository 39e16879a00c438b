"""benchmarks.real_stats: its estimators recover known noise, stripe, edge-blur, shading, defect and JPEG-blocking
amplitudes, and (on ../shared/data) no severity 5 lies beyond every real LWIR frame."""

import io

import numpy as np
import pytest
from PIL import Image
from scipy.special import erf

from benchmarks.real_stats import (
    blockiness,
    defect_fraction,
    edge_sigma,
    frame_stats,
    noise_sigma,
    shading_falloff,
    stripe_sigma,
    tables,
)


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


def _step(sigma: float, h: int = 200, w: int = 240, angle: float = 5.0) -> np.ndarray:
    """A 60 -> 190 DN step slanted by ``angle`` degrees, blurred by a Gaussian of ``sigma`` pixels (the erf profile,
    point-sampled), so its true sigma is known."""
    yy, xx = np.mgrid[0:h, 0:w]
    d = ((xx - w / 2) - (yy - h / 2) * np.tan(np.radians(angle))) * np.cos(np.radians(angle))  # distance to the edge
    return 60 + 130 * 0.5 * (1 + erf(d / (np.sqrt(2) * sigma)))


def test_edge_sigma_reads_the_blur_of_a_known_edge():
    for sigma in (1.0, 1.5, 2.0):
        assert edge_sigma(_step(sigma)) == pytest.approx(sigma, rel=0.1)
    assert edge_sigma(_step(1.0).T) == pytest.approx(edge_sigma(_step(1.0)), rel=0.02)  # horizontal edges too
    sharp = np.where(_step(0.01) > 125, 190.0, 60.0)
    assert edge_sigma(sharp) < 0.3  # a sampled ideal step (slope = step / 2) reads about 0
    assert np.isnan(edge_sigma(np.full((100, 100), 80.0)))  # no edge: no estimate
    rng = np.random.default_rng(1)
    texture = 120 + rng.normal(0, 15, (200, 240))  # noise alone is not an edge (not one monotone step)
    assert np.isnan(edge_sigma(texture)) or edge_sigma(texture) < 0.5


def test_shading_falloff_reads_a_known_vignetting():
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2)
    for amplitude in (0.05, 0.15):
        assert shading_falloff(128 * (1 - amplitude * r2)) == pytest.approx(amplitude, abs=0.005)
    ramp = 100 + 40 * xx / w + 20 * yy / h  # a linear scene gradient is not shading
    assert abs(shading_falloff(ramp)) < 0.005
    assert shading_falloff(128 * (1 + 0.1 * r2)) == pytest.approx(-0.1, abs=0.005)  # brighter corners: negative


def test_defect_fraction_counts_isolated_dead_and_hot_pixels():
    h, w = 300, 400
    yy, xx = np.mgrid[0:h, 0:w]
    scene = 120 + 50 * np.sin(xx / 40) * np.cos(yy / 30) + np.random.default_rng(2).normal(0, 2, (h, w))
    assert defect_fraction(scene) == 0.0
    where = np.random.default_rng(3).choice(h * w, size=120, replace=False)
    bad = scene.copy().ravel()
    bad[where[:80]], bad[where[80:]] = 0.0, 255.0
    found = defect_fraction(bad.reshape(h, w))
    # 120 defects, less the rare ones that touch another (not isolated) or sit where the scene is within 40 DN
    assert 110 / (h * w) <= found <= 120 / (h * w)


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(frame.astype(np.uint8), mode="L").save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float64)


def test_blockiness_rises_as_libjpeg_quality_falls():
    h, w = 256, 320
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(4)
    scene = np.clip(120 + 60 * np.sin(xx / 23 + yy / 41) + rng.normal(0, 3, (h, w)), 0, 255).round()
    clean = blockiness(scene)
    values = [blockiness(_jpeg(scene, q)) for q in (90, 50, 10)]
    assert clean == pytest.approx(1.0, abs=0.05)
    assert values[0] < values[1] < values[2] and values[2] > 1.5


@pytest.mark.slow
def test_no_severity_lies_beyond_every_real_frame(shared_data):
    text, problems = tables(shared_data, count=2)
    assert problems == []
    assert "**all real** | 375" in text and "JPEG blockiness" in text
