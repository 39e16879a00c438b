"""Degradations measured on synthetic frames: each one does what it claims (downstream.degradations).

Every statistic is estimated from the output and compared with the parameter of configs/degradations/ that
should produce it; the tolerances are a few standard errors of the estimate.
"""

import numpy as np
import pytest
import torch

from downstream.degradations import degrade, parse_list, resolve
from downstream.degradations.optics import blur
from downstream.degradations.pipeline import ORDER, output_bits
from sr.degrade import degrade as paper_bicubic
from sr.errors import ConfigError, UnknownNameError

SEVERITIES = (1, 2, 3, 4, 5)


def params(name: str, severity: int) -> dict:
    return resolve(f"{name}@{severity}").steps[-1 if name not in ("blur", "shading") else 0].params


def flat(value: float, size: int, bits: int = 16) -> torch.Tensor:
    levels = 2**bits - 1
    return torch.full((1, size, size), round(value * levels) / levels, dtype=torch.float32)


def test_bicubic_is_the_papers_function_bit_for_bit():
    hr = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 64, 48)) / 255.0).float()
    assert torch.equal(degrade(hr, "bicubic", scale=4), paper_bicubic(hr, 4))
    assert resolve("bicubic").label == "bicubic" and resolve("bicubic").severity is None


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_scale_is_a_parameter(scale):
    hr = torch.rand(1, 64, 48)
    for label in ("bicubic", "area", "noise@2", "sensor@3"):
        assert degrade(hr, label, scale=scale).shape == (1, 64 // scale, 48 // scale)


def test_deterministic_per_sample_and_seed():
    hr = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (1, 64, 64)) / 255.0).float()
    a = degrade(hr, "sensor@3", seed=7, sample_id="x")
    assert torch.equal(a, degrade(hr, "sensor@3", seed=7, sample_id="x"))
    assert not torch.equal(a, degrade(hr, "sensor@3", seed=8, sample_id="x"))
    assert not torch.equal(a, degrade(hr, "sensor@3", seed=7, sample_id="y"))


def test_names_and_severities_are_checked():
    assert parse_list("bicubic, noise@3,stripe@5,sensor@2") == ["bicubic", "noise@3", "stripe@5", "sensor@2"]
    with pytest.raises(ConfigError, match="needs a severity"):
        resolve("noise")
    with pytest.raises(ConfigError, match="no severities"):
        resolve("bicubic@2")
    with pytest.raises(ConfigError, match="1-5"):
        resolve("noise@9")
    with pytest.raises(UnknownNameError, match="noise"):
        resolve("nois@3")
    with pytest.raises(ConfigError, match="twice"):
        parse_list("noise@1,noise@1")


def test_sensor_runs_in_the_physical_order():
    for severity in SEVERITIES:
        names = [s.name for s in resolve(f"sensor@{severity}").steps]
        assert names == sorted(names, key=ORDER.index)
        assert names[:3] == ["blur", "shading", "area"] and "agc" in names
    assert [s.stage for s in resolve("noise@1").steps] == ["sampling", "counts"]  # bicubic sampling, then noise


def _edge_width(lr: np.ndarray) -> float:
    """Standard deviation of the line-spread function (derivative of the edge profile), in pixels."""
    profile = lr.mean(axis=0)
    lsf = np.clip(np.diff(profile), 0, None)
    x = np.arange(lsf.size)
    mean = (x * lsf).sum() / lsf.sum()
    return float(np.sqrt(((x - mean) ** 2 * lsf).sum() / lsf.sum()))


@pytest.mark.parametrize("severity", SEVERITIES)
def test_blur_psf_width_measured_from_an_edge(severity):
    sigma = params("blur", severity)["sigma"]
    edge = np.zeros((1, 32, 512))
    edge[..., 256:] = 1.0
    out = blur(edge, None, scale=4, bits=16, sigma=sigma)[0]
    assert _edge_width(out) == pytest.approx(sigma * 4, rel=0.02)  # LR pixels * scale = HR pixels


def test_blur_widens_the_lr_edge_with_severity():
    edge = torch.zeros(1, 64, 512)
    edge[..., 256:] = 1.0
    widths = [_edge_width(degrade(edge, f"blur@{s}", bits=16)[0].numpy()) for s in SEVERITIES]
    assert widths == sorted(widths) and widths[-1] > 2 * widths[0]


@pytest.mark.parametrize("severity", SEVERITIES)
def test_noise_std_in_a_flat_field(severity):
    sigma = params("noise", severity)["sigma"] / 255
    out16 = degrade(flat(0.5, 1024), f"noise@{severity}", sample_id="f").numpy()
    assert out16.std() == pytest.approx(sigma, rel=0.04)  # 65536 pixels: standard error 0.3 %
    out8 = degrade(flat(0.5, 1024, bits=8), f"noise@{severity}", sample_id="f").numpy()
    assert out8.std() == pytest.approx(np.sqrt(sigma**2 + 1 / 12 / 255**2), rel=0.06)  # plus 8-bit rounding


@pytest.mark.parametrize("severity", SEVERITIES)
def test_stripe_power_is_at_the_column_frequency(severity):
    p = params("stripe", severity)
    out = degrade(flat(0.5, 2048), f"stripe@{severity}", sample_id="s")[0].double().numpy() * 255
    columns, rows = out.mean(axis=0), out.mean(axis=1)  # profiles: column offsets vary along x, row offsets along y
    assert columns.std() == pytest.approx(p["column_sigma"], rel=0.15)  # 512 columns
    assert rows.std() == pytest.approx(p["row_sigma"], rel=0.15)
    spectrum = np.abs(np.fft.fft2(out - out.mean())) ** 2
    horizontal, vertical = spectrum[0, 1:].sum(), spectrum[1:, 0].sum()  # column pattern / row pattern energy
    assert horizontal / vertical == pytest.approx((p["column_sigma"] / p["row_sigma"]) ** 2, rel=0.35)
    assert horizontal > 2 * vertical


@pytest.mark.parametrize("severity", SEVERITIES)
def test_nuc_dead_and_hot_pixel_fractions(severity):
    p = params("nuc", severity)
    out = degrade(flat(0.5, 1024), f"nuc@{severity}", sample_id="n")[0].numpy()
    n = out.size
    assert (out == 0).sum() == round(p["dead"] * n) and (out == 1).sum() == round(p["hot"] * n)
    alive = out[(out > 0) & (out < 1)]
    expected = np.sqrt((0.5 * p["gain_sigma"]) ** 2 + (p["offset_sigma"] / 255) ** 2)
    assert alive.std() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_shading_falls_off_to_the_corner(severity):
    amplitude = params("shading", severity)["amplitude"]
    out = degrade(flat(0.5, 512), f"shading@{severity}", sample_id="v")[0].numpy()
    assert out.min() / out.max() == pytest.approx(1 - amplitude, abs=0.006)


def _raw16(rng, size=256, low=20000, span=4000) -> torch.Tensor:
    """A 16-bit raw-count frame occupying a narrow part of the range, as a 14/16-bit camera's raw output does."""
    smooth = np.cumsum(np.cumsum(rng.normal(size=(size, size)), 0), 1)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return torch.from_numpy(np.round(low + span * smooth)[None] / 65535).float()


@pytest.mark.parametrize("severity", SEVERITIES)
def test_agc_gives_8_bit_spanning_its_range_from_16_bit(severity):
    raw = _raw16(np.random.default_rng(severity))
    out = degrade(raw, f"agc@{severity}", bits=16)[0].numpy() * 255
    assert np.array_equal(out, np.round(out))  # on the 8-bit grid
    assert out.min() == 0 and out.max() == 255
    tail = params("agc", severity)["tail"] / 100
    assert (out == 0).mean() == pytest.approx(tail, abs=0.01) and (out == 255).mean() == pytest.approx(tail, abs=0.01)
    assert output_bits(f"agc@{severity}", 16) == 8


def test_noise_keeps_the_16_bit_grid():
    out = degrade(_raw16(np.random.default_rng(0)), "noise@3", bits=16)[0].double().numpy() * 65535
    assert np.allclose(out, np.round(out), atol=1e-3)  # 16-bit counts
    assert np.mean(np.round(out) % 257 != 0) > 0.9  # not 8-bit values in disguise
    assert output_bits("noise@3", 16) == 16


def test_jpeg_blockiness_rises_with_severity():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:512, 0:512] / 512
    scene = 0.5 + 0.3 * np.sin(6 * xx + 3 * yy) + 0.05 * rng.normal(size=(512, 512))
    hr = torch.from_numpy(np.round(np.clip(scene, 0, 1) * 255)[None] / 255).float()
    from benchmarks.real_stats import blockiness  # the estimator the severities are grounded with

    clean = blockiness(degrade(hr, "bicubic")[0].numpy() * 255)  # jpeg@s = bicubic sampling, then JPEG
    values = [blockiness(degrade(hr, f"jpeg@{s}")[0].numpy() * 255) for s in SEVERITIES]
    assert clean == pytest.approx(1.0, abs=0.05)
    assert clean < values[0] and values == sorted(values) and values[-1] > 1.3 * values[0] and values[-1] > 1.5


def test_dataset_identity_includes_the_degradations_parameters():
    from downstream.datasets import load_dataset
    from downstream.degradations import degraded

    base = load_dataset("synthir_demo")
    assert base.identity()["degradation"] == "bicubic"  # keys of runs from before the degradation axis
    one, five = degraded(base, "noise@1", seed=0), degraded(base, "noise@5", seed=0)
    assert one.identity()["degradation"]["steps"][1] == ["noise", params("noise", 1)]
    assert one.identity() != five.identity() != degraded(base, "noise@5", seed=1).identity()
    a, b = one.load(one.ids()[0]), five.load(one.ids()[0])
    assert torch.equal(a.hr, b.hr) and not torch.equal(a.lr, b.lr)
    assert torch.equal(base.load(base.ids()[0]).lr, paper_bicubic(a.hr, 4))


def test_perf_reports_each_degradation_as_a_ratio_to_bicubic():
    from benchmarks.speed.degradation_perf import degradation_times

    rows = degradation_times(["noise@3", "sensor@2"], ["32x24"], warmup=0, repeat=2)
    assert [r["degradation"] for r in rows] == ["bicubic", "noise@3", "sensor@2"]
    assert rows[0]["ratio"] == 1.0 and all(r["latency_ms"] > 0 and r["ratio"] > 0 for r in rows)


def test_a_data_sets_own_degradation_is_never_silently_replaced():
    from downstream.datasets import load_dataset
    from downstream.degradations import degraded

    noisy = load_dataset("synthir_demo", degradation="noise@2")
    assert degraded(noisy, "noise@2") is noisy and degraded(noisy, "noise@2", seed=3).degradation_seed == 3
    with pytest.raises(ConfigError, match="--degradations noise@2"):
        degraded(noisy, "bicubic")


def test_training_draws_a_degradation_per_patch_from_the_same_definitions():
    from sr.train.config import DataConfig
    from sr.train.data import PairedPatches

    cfg = DataConfig(dataset="synthir_val", max_images=2, patch_size=32, batch_size=6, degradations=["sensor@3"])
    mix = PairedPatches(cfg)
    a, b = mix.batch(torch.Generator().manual_seed(0)), mix.batch(torch.Generator().manual_seed(0))
    assert torch.equal(a["lr"], b["lr"]) and torch.equal(a["hr"], b["hr"])  # exact given the run's generator
    hr = (a["hr"][0] + 1) / 2
    assert not torch.equal((a["lr"][0] + 1) / 2, paper_bicubic(hr, 4))
    assert ((a["lr"] + 1) / 2 * 255 - ((a["lr"] + 1) / 2 * 255).round()).abs().max() < 1e-3  # agc: 8-bit output
    plain = PairedPatches(DataConfig(dataset="synthir_val", max_images=2, patch_size=32, batch_size=6))
    clean = plain.batch(torch.Generator().manual_seed(0))
    assert torch.equal((clean["lr"][0] + 1) / 2, paper_bicubic((clean["hr"][0] + 1) / 2, 4))
    with pytest.raises(ConfigError, match="1-5"):
        PairedPatches(DataConfig(dataset="synthir_val", max_images=2, patch_size=32, degradations=["noise@6"]))
