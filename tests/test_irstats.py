"""Infrared statistics SD / AG / SF / EI: hand-computed cases and independent numpy / scipy implementations."""

import math

import numpy as np
import pytest
import scipy.ndimage
import torch

from downstream.irstats import (
    average_gradient,
    edge_intensity,
    spatial_frequency,
    standard_deviation,
)
from downstream.metrics import QualityMetric


def _img(levels):
    """Grey levels (0..255) -> [1, 1, H, W] in [0, 1]."""
    return torch.tensor(levels, dtype=torch.float64)[None, None] / 255.0


def test_hand_computed_2x2():
    x = _img([[0, 3], [4, 0]])
    # mean 1.75; squared deviations 3.0625 + 1.5625 + 5.0625 + 3.0625 = 12.75 over 4 pixels
    assert float(standard_deviation(x)) == pytest.approx(math.sqrt(12.75 / 4), abs=1e-9)
    # one interior point: dx = 3, dy = 4 -> sqrt((9 + 16) / 2)
    assert float(average_gradient(x)) == pytest.approx(math.sqrt(12.5), abs=1e-9)
    # RF^2 = (3^2 + 4^2) / 4, CF^2 = (4^2 + 3^2) / 4
    assert float(spatial_frequency(x)) == pytest.approx(math.sqrt(25 / 4 + 25 / 4), abs=1e-9)


def test_hand_computed_edge_intensity_of_a_step():
    x = _img([[0, 0, 10]] * 3)
    # replicated borders: Sx = (1 + 2 + 1) * (right - left) = 0, 40, 40 per row; Sy = 0
    assert float(edge_intensity(x)) == pytest.approx((0 + 40 + 40) * 3 / 9, abs=1e-9)
    assert float(edge_intensity(_img([[7] * 4] * 4))) == 0.0


def test_against_independent_numpy_and_scipy():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 256, size=(13, 17)).astype(np.float64)
    x = _img(g.tolist())
    assert float(standard_deviation(x)) == pytest.approx(np.std(g), rel=1e-9)
    ag = np.mean(
        [
            math.sqrt(((g[i, j + 1] - g[i, j]) ** 2 + (g[i + 1, j] - g[i, j]) ** 2) / 2)
            for i in range(12)
            for j in range(16)
        ]
    )
    assert float(average_gradient(x)) == pytest.approx(ag, rel=1e-9)
    sf = math.sqrt((np.sum(np.diff(g, axis=1) ** 2) + np.sum(np.diff(g, axis=0) ** 2)) / g.size)
    assert float(spatial_frequency(x)) == pytest.approx(sf, rel=1e-9)
    sx, sy = scipy.ndimage.sobel(g, axis=1, mode="nearest"), scipy.ndimage.sobel(g, axis=0, mode="nearest")
    ei = np.mean(np.hypot(sx, sy))
    assert float(edge_intensity(x)) == pytest.approx(ei, rel=1e-9)


@pytest.mark.parametrize("name", ["sd", "ag", "sf", "ei"])
def test_registry_metric_scores_a_replicated_frame_as_the_frame(name):
    metric = QualityMetric(name)
    assert metric.spec.kind == "no-reference" and metric.spec.higher_better and metric.flags == ()
    x = torch.rand(2, 1, 20, 24)
    ours = metric(x)
    assert ours.shape == (2,)
    assert torch.allclose(ours, metric(x.expand(-1, 3, -1, -1)), rtol=1e-6)
    low, high = metric.spec.range
    assert (ours >= low).all() and (high is None or (ours <= high).all())
