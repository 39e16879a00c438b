"""SynthIR procedural thermal scenes: determinism, label validity, label/pixel agreement, thermal plausibility."""

import time

import numpy as np
import pytest

from downstream.datasets.synthir import FMB_CLASSES, M3FD_CLASSES, M3FD_TO_FMB, SynthScene, render_scene

SEEDS = range(50)
WARM_FMB = [FMB_CLASSES.index(c) for c in ("lamp", "person", "car", "truck", "bus", "motorcycle")]


@pytest.fixture(scope="module")
def scenes() -> list[SynthScene]:
    return [render_scene(s) for s in SEEDS]


def test_deterministic_by_seed():
    a, b, c = render_scene(7), render_scene(7), render_scene(8)
    for field in ("image", "boxes", "mask"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.mask, c.mask)


@pytest.mark.parametrize("h, w", [(240, 320), (120, 160), (192, 256)])
def test_shapes_and_dtypes(h, w):
    s = render_scene(3, height=h, width=w)
    assert s.image.shape == (h, w) and s.image.dtype == np.uint8
    assert s.mask.shape == (h, w) and s.mask.dtype == np.uint8
    assert s.boxes.dtype == np.float32 and s.boxes.ndim == 2 and s.boxes.shape[1] == 5
    assert s.mask.max() < len(FMB_CLASSES)


def test_boxes_valid(scenes):
    for s in scenes:
        h, w = s.image.shape
        cls, x1, y1, x2, y2 = s.boxes.T
        assert np.all(cls == np.round(cls)) and np.all((cls >= 0) & (cls < len(M3FD_CLASSES)))
        assert np.all((x1 >= 0) & (y1 >= 0) & (x2 <= w) & (y2 <= h))
        assert np.all((x2 - x1 >= 4) & (y2 - y1 >= 4))


def test_box_count_typical(scenes):
    counts = np.array([len(s.boxes) for s in scenes])
    assert 3 <= np.median(counts) <= 12
    assert np.mean((counts >= 2) & (counts <= 15)) > 0.9


def test_boxes_match_mask(scenes):
    """Each box is filled to a meaningful fraction by its class in the mask, and touches it on all four sides."""
    fractions = {c: [] for c in range(len(M3FD_CLASSES))}
    for s in scenes:
        for c, x1, y1, x2, y2 in s.boxes.astype(int):
            inside = s.mask[y1:y2, x1:x2] == M3FD_TO_FMB[c]
            assert inside.mean() > 0.2, (M3FD_CLASSES[c], inside.mean())
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            fractions[c].append(inside.mean())
    minimum = (0.4, 0.7, 0.7, 0.35, 0.8, 0.7)  # people and motorcycles are slender, vehicles fill their box
    for c in range(len(M3FD_CLASSES)):
        assert np.median(fractions[c]) > minimum[c], M3FD_CLASSES[c]


def test_all_classes_occur(scenes):
    box_classes = set(np.concatenate([s.boxes[:, 0] for s in scenes]).astype(int))
    assert box_classes == set(range(len(M3FD_CLASSES)))
    mask_ids = set(np.unique(np.concatenate([np.unique(s.mask) for s in scenes])))
    assert mask_ids == set(range(len(FMB_CLASSES)))


def test_objects_warmer_than_local_background(scenes):
    """White-hot: object pixels are brighter than the non-object ring around their box."""
    diffs = []
    for s in scenes:
        h, w = s.image.shape
        for c, x1, y1, x2, y2 in s.boxes.astype(int):
            m = max(3, (x2 - x1) // 4, (y2 - y1) // 4)
            X1, Y1, X2, Y2 = max(0, x1 - m), max(0, y1 - m), min(w, x2 + m), min(h, y2 + m)
            ring = ~np.isin(s.mask[Y1:Y2, X1:X2], WARM_FMB)
            ring[y1 - Y1 : y2 - Y1, x1 - X1 : x2 - X1] = False
            obj = s.mask[y1:y2, x1:x2] == M3FD_TO_FMB[c]
            if ring.sum() >= 5:
                diffs.append(s.image[y1:y2, x1:x2][obj].mean() - s.image[Y1:Y2, X1:X2][ring].mean())
    diffs = np.array(diffs)
    assert len(diffs) > 100
    assert np.mean(diffs > 0) > 0.85 and np.mean(diffs) > 15


def test_image_statistics_plausible(scenes):
    for s in scenes:
        img = s.image
        assert np.mean((img == 0) | (img == 255)) < 0.02
        lo, hi = np.percentile(img, [1, 99])
        assert hi - lo > 100
    sky = FMB_CLASSES.index("sky")
    road = FMB_CLASSES.index("road")
    for s in scenes[:10]:  # the sky is the coldest large region, colder than the road
        if (s.mask == sky).sum() > 500:
            assert s.image[s.mask == sky].mean() < s.image[s.mask == road].mean()


def test_fast_enough():
    render_scene(0)
    t0 = time.perf_counter()
    for seed in range(10):
        render_scene(seed)
    assert (time.perf_counter() - t0) / 10 < 0.15  # ~35 ms on one core; generous for slow CI machines
