"""Quality metrics: the runner's numbers equal pyiqa called directly with the official protocol."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyiqa
import pytest
import scipy.io
import torch
from conftest import noise_frames
from PIL import Image

from benchmarks.run import main as run_main
from downstream.metrics import BUNDLED_DIR, QualityMetric, list_metrics, metric_specs
from sr.errors import MissingWeightsError
from sr.vocab import FLAG_NIQE_FALLBACK_PARAMS, split_flags

OFFICIAL = {
    "psnr": dict(test_y_channel=True, color_space="ycbcr"),
    "ssim": dict(test_y_channel=True, color_space="ycbcr"),
}
NO_REFERENCE = ("niqe", "piqe", "entropy")
# pyiqa's published scores of its own implementation on its five calibration images (I03, I04, I06, I08, I19):
# rows niqe(ours), piqe(ours), entropy(ours) of ResultsCalibra/calibration_summary.csv in the IQA-PyTorch repository
PYIQA_CALIBRATION = {
    "niqe": [15.6538, 3.6549, 3.2342, 3.1921, 9.0722],
    "piqe": [100.0, 21.6242, 35.8646, 41.147, 76.9485],
    "entropy": [6.9511, 6.9661, 7.5309, 7.5565, 5.7629],
}
# measured: NIQE with the bundled parameters differs from the published value by 0.0020 on I03, <= 0.0005 elsewhere
CALIBRATION_TOLERANCE = {"niqe": 0.0025, "piqe": 0.0005, "entropy": 0.0005}


def _niqe_params(path):
    """A NIQE parameter file in the official layout (mu_prisparam, cov_prisparam) with made-up values:
    the real file cannot be downloaded here; both sides of the comparison read this same file."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(36, 36))
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"mu_prisparam": rng.normal(size=(1, 36)), "cov_prisparam": a @ a.T / 36 + np.eye(36)})


def _rgb(path):
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)[None]


def _check_real_pairs(shared_data, tmp_path, ids, official_niqe=True):
    """The harness's PSNR / SSIM / NIQE / PIQE / entropy on real frames equal pyiqa's, called directly.

    ``official_niqe``: a file in the weights directory (made-up values in the official layout); otherwise the
    weights directory is empty and both sides use the project's bundled NIQE parameters."""
    m3fd = shared_data / "m3fd"
    weights = tmp_path / "weights"
    weights.mkdir()
    official_file = weights / "pyiqa" / "niqe_modelparameters.mat"
    niqe_file = official_file if official_niqe else BUNDLED_DIR / "niqe_pris_params.mat"
    if official_niqe:
        _niqe_params(niqe_file)
    out = tmp_path / "run"
    dataset = f"folder:{m3fd / 'ir'}"
    code = run_main(
        [
            "--datasets",
            dataset,
            "--methods",
            "bicubic,hr",
            "--tasks",
            "quality",
            "--metrics",
            "psnr,ssim,niqe,piqe,entropy",
            "--weights-dir",
            str(weights),
            "--out",
            str(out),
            "--quiet",
            "--no-report",
        ]
    )
    assert code == 0
    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    direct = {name: pyiqa.create_metric(name, device="cpu", **opts) for name, opts in OFFICIAL.items()}
    direct["niqe"] = pyiqa.create_metric("niqe", device="cpu", pretrained_model_path=str(niqe_file))
    direct["piqe"] = pyiqa.create_metric("piqe", device="cpu")
    direct["entropy"] = pyiqa.create_metric("entropy", device="cpu")
    for method in ("bicubic", "hr"):
        values = {name: [] for name in direct}
        for i in ids:
            hr = _rgb(m3fd / "ir" / f"{i}.png")
            if method == "bicubic":  # the official LR file, PIL-bicubic upscaled, saved as 8-bit PNG
                lr = Image.open(m3fd / "lr_x4_difiisr" / f"{i}x4.png").convert("RGB")
                sr_path = tmp_path / f"{i}_bicubic.png"
                lr.resize((lr.width * 4, lr.height * 4), Image.BICUBIC).save(sr_path)
                sr_img = _rgb(sr_path)
            else:
                sr_img = hr
            for name, metric in direct.items():
                values[name].append(float(metric(sr_img) if name in NO_REFERENCE else metric(sr_img, hr)))
        for name, vals in values.items():
            row = df[(df.method == method) & (df.metric == name) & (df["class"] == "all")].iloc[0]
            assert row.value == pytest.approx(np.mean(vals), rel=1e-6, abs=1e-6), (method, name)
            fallback = name == "niqe" and not official_niqe
            assert (FLAG_NIQE_FALLBACK_PARAMS in split_flags(row["flags"])) == fallback, (method, name, row["flags"])
    used = json.loads((out / "run.json").read_text())["metric_files"]["niqe"]
    assert used["files"]["pretrained_model_path"]["path"] == str(niqe_file)
    assert used["flags"] == ([] if official_niqe else [FLAG_NIQE_FALLBACK_PARAMS])
    return df


def test_runner_equals_pyiqa_on_real_pairs_quick(shared_data, tmp_path, monkeypatch):
    """Two of the ten official pairs (one 1024x768, the odd 440x320 one) in the default run."""
    ids = ["01828", "02090"]
    _limit_folder(monkeypatch, ids)
    _check_real_pairs(shared_data, tmp_path, ids, official_niqe=False)


def test_official_niqe_file_is_used_when_present(tmp_path):
    _niqe_params(tmp_path / "pyiqa" / "niqe_modelparameters.mat")
    metric = QualityMetric("niqe", weights_dir=tmp_path)
    assert metric.flags == () and metric.weight_files["pretrained_model_path"].parent == tmp_path / "pyiqa"
    x = torch.rand(1, 1, 96, 96)
    direct = pyiqa.create_metric(
        "niqe", device="cpu", pretrained_model_path=str(tmp_path / "pyiqa" / "niqe_modelparameters.mat")
    )
    assert float(metric(x)) == pytest.approx(float(direct(x.expand(-1, 3, -1, -1))), rel=1e-6)
    assert float(metric(x)) != pytest.approx(float(QualityMetric("niqe", weights_dir=tmp_path / "empty")(x)), rel=1e-3)


@pytest.mark.slow
def test_runner_equals_pyiqa_on_all_ten_real_pairs(shared_data, tmp_path, monkeypatch):
    ids = sorted(p.stem[:-2] for p in (shared_data / "m3fd" / "lr_x4_difiisr").glob("*x4.png"))
    assert len(ids) == 10
    _limit_folder(monkeypatch, ids)
    _check_real_pairs(shared_data, tmp_path, ids, official_niqe=True)


def _limit_folder(monkeypatch, ids):
    """Restrict the ad-hoc folder data set to ``ids`` (the folder also holds two frames without LR)."""
    from downstream.datasets.folder import FolderDataset

    scan = FolderDataset._scan
    monkeypatch.setattr(FolderDataset, "_scan", lambda self: {i: p for i, p in scan(self).items() if i in ids})


@pytest.mark.parametrize("name", sorted(PYIQA_CALIBRATION))
def test_weight_free_metrics_reproduce_pyiqa_calibration(name, tmp_path):
    """NIQE with the bundled basicsr parameters, PIQE and entropy on pyiqa's calibration images (which pyiqa's
    wheel installs next to it) against pyiqa's published numbers."""
    calib = Path(pyiqa.__file__).resolve().parents[1] / "ResultsCalibra" / "dist_dir"
    if not calib.is_dir():
        pytest.skip(f"pyiqa's calibration images are not installed ({calib})")
    metric = QualityMetric(name, weights_dir=tmp_path)
    assert metric.flags == ((FLAG_NIQE_FALLBACK_PARAMS,) if name == "niqe" else ())
    ours = [float(metric(_rgb(calib / f"{i}.bmp"))) for i in ("I03", "I04", "I06", "I08", "I19")]
    assert ours == pytest.approx(PYIQA_CALIBRATION[name], abs=CALIBRATION_TOLERANCE[name])


def test_metric_registry_says_kind_direction_and_range():
    specs = metric_specs()
    assert {n for n, s in specs.items() if s.kind == "reference"} == {"psnr", "ssim", "lpips"}
    lower = {n for n, s in specs.items() if not s.higher_better}
    assert lower == {"lpips", "niqe", "piqe"}
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    for name, spec in specs.items():
        if spec.pyiqa:  # pyiqa's own direction agrees with the registry's
            assert DEFAULT_CONFIGS[spec.pyiqa].get("lower_better", False) == (not spec.higher_better), name
        low, high = spec.range
        assert low is not None and (high is None or high > low), name


def test_network_metrics_need_their_weights_and_never_download(tmp_path):
    for name in ("lpips", "clipiqa", "musiq"):
        with pytest.raises(MissingWeightsError) as info:
            QualityMetric(name, weights_dir=tmp_path)
        assert str(tmp_path) in str(info.value) and "http" in str(info.value)


@pytest.mark.parametrize("name", ["lpips", "musiq"])
def test_random_weights_are_explicit_and_flagged(name):
    metric = QualityMetric(name, random_weights=True)
    assert metric.flags == ("random_weights",)
    x = torch.rand(1, 1, 64, 64)
    assert torch.isfinite(metric(x, x if metric.spec.reference else None)).all()
    assert QualityMetric("psnr", random_weights=True).flags == ()


def test_single_channel_is_scored_as_three_equal_channels():
    psnr = QualityMetric("psnr")
    a, b = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    assert float(psnr(a, b)) == pytest.approx(float(psnr(a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1))))
    assert set(list_metrics()) >= {"psnr", "ssim", "lpips", "niqe", "clipiqa", "musiq"}


def test_entropy_is_pyiqas_bit_for_bit():
    """The harness's entropy counts the histogram with bincount instead of pyiqa's one-hot sum: the same values,
    exactly, on gray and colour frames, 8-bit grids and arbitrary floats, batches, and the demo's SR outputs."""
    from downstream.datasets import load_dataset

    ours, theirs = QualityMetric("entropy"), pyiqa.create_metric("entropy", device="cpu")
    rng = torch.Generator().manual_seed(3)
    frames = [
        torch.rand(1, 1, 240, 320, generator=rng),
        (torch.rand(2, 3, 37, 53, generator=rng) * 255).round() / 255,
        torch.rand(1, 3, 64, 64, generator=rng) ** 4,
        torch.zeros(1, 1, 16, 16),
        torch.ones(1, 3, 16, 16),
    ]
    dataset = load_dataset("synthir_demo")
    frames += [dataset.load(i).hr[None].float() for i in dataset.ids()[:3]]
    for x in frames:
        expected = theirs(x if x.shape[1] == 3 else x.expand(-1, 3, -1, -1))
        assert torch.equal(ours(x), expected.float().reshape(-1)), x.shape


def _ssim_pairs():
    """(image, reference) pairs: gray and colour, batched, off the 8-bit grid, the smallest window, constant frames,
    and the demo's HR frames against a blurred and a shifted copy of themselves."""
    from downstream.datasets import load_dataset

    rng = torch.Generator().manual_seed(5)
    hr = torch.rand(2, 3, 37, 53, generator=rng)
    pairs = [
        (torch.rand(1, 1, 240, 320, generator=rng), torch.rand(1, 1, 240, 320, generator=rng)),
        ((hr + 0.1 * torch.rand(hr.shape, generator=rng)).clamp(0, 1), hr),
        (torch.rand(1, 3, 11, 11, generator=rng) ** 3, torch.rand(1, 3, 11, 11, generator=rng)),
        (torch.zeros(1, 1, 16, 16), torch.ones(1, 1, 16, 16)),
        (torch.ones(1, 3, 16, 16), torch.ones(1, 3, 16, 16)),
    ]
    dataset = load_dataset("synthir_demo")
    for i in dataset.ids()[:3]:
        ref = dataset.load(i).hr[None].float()
        blurred = torch.nn.functional.avg_pool2d(ref, 3, stride=1, padding=1, count_include_pad=False)
        pairs += [(blurred, ref), (ref.roll(2, dims=-1), ref)]
    return pairs


def _ssim_equals_pyiqa(pairs):
    """Each pair scored by pyiqa's SSIM and by the harness's network (float64): within 1e-12. The metric (float32
    output, as the runner stores it) gives its network's value, with a ReferenceMemo too (asked twice, so the second
    call reads the memo), and the float32 of pyiqa's value to one float32 rounding step."""
    from downstream.metrics import ReferenceMemo

    theirs = pyiqa.create_metric("ssim", device="cpu", **OFFICIAL["ssim"])
    ours = QualityMetric("ssim")
    memo = ReferenceMemo()
    worst = 0.0
    for k, (x, ref) in enumerate(pairs):
        x3, ref3 = (t if t.shape[1] == 3 else t.expand(-1, 3, -1, -1) for t in (x, ref))
        expected = theirs(x3, ref3)
        net = ours.model(x3, ref3)
        assert expected.dtype == net.dtype == torch.float64
        worst = max(worst, float((net - expected).abs().max()))
        assert torch.equal(ours(x, ref), net.float()), k
        for _ in range(2):
            assert torch.equal(ours(x, ref, memo=memo, reference_key=(k,)), net.float()), (k, x.shape)
        assert torch.allclose(net.float(), expected.float(), rtol=2**-23, atol=0), k
    assert worst <= 1e-12
    assert memo.bytes > 0


def test_ssim_is_pyiqas_to_1e12():
    """The harness's SSIM (FFT filtering, reference side computed once per frame) gives pyiqa's values to 1e-12,
    with and without the memo, on synthetic and demo frames."""
    _ssim_equals_pyiqa(_ssim_pairs())


def test_ssim_is_pyiqas_to_1e12_on_real_frames(shared_data):
    """The same on a real M3FD frame (1024x768; one, to keep the default suite fast: pyiqa's float64 direct
    convolutions take seconds there): the HR frame against its official LR file upscaled with PIL bicubic."""
    m3fd = shared_data / "m3fd"
    pairs = []
    for lr_path in sorted((m3fd / "lr_x4_difiisr").glob("*x4.png"))[:1]:
        hr = _rgb(m3fd / "ir" / f"{lr_path.stem[:-2]}.png")
        lr = Image.open(lr_path).convert("RGB")
        up = np.asarray(lr.resize((lr.width * 4, lr.height * 4), Image.BICUBIC), dtype=np.float32) / 255.0
        pairs.append((torch.from_numpy(up).permute(2, 0, 1)[None], hr))
    assert pairs
    _ssim_equals_pyiqa(pairs)


def _niqe_frames():
    """Frames for NIQE: the 12 demo HR frames (gray) with a blurred and a noisy copy of each, colour and batched
    frames, sizes that are not multiples of 96 (partial blocks dropped), and a frame half constant (blocks whose AGGD
    fits are NaN, which pyiqa's nanmean / nancov leave out)."""
    from downstream.datasets import load_dataset

    rng = torch.Generator().manual_seed(11)
    dataset = load_dataset("synthir_demo")
    frames = []
    for i in dataset.ids():
        hr = dataset.load(i).hr[None].float()
        blurred = torch.nn.functional.avg_pool2d(hr, 3, stride=1, padding=1, count_include_pad=False)
        noisy = (hr + 0.05 * torch.randn(hr.shape, generator=rng)).clamp(0, 1)
        frames += [hr, blurred, noisy]
    assert len(frames) == 36
    half = torch.rand(1, 1, 200, 300, generator=rng)
    half[..., :150] = 0.5
    frames += [
        torch.rand(2, 3, 200, 300, generator=rng),  # colour (pyiqa takes its Y), batched, 200 x 300
        torch.cat([frames[0], frames[4]]),  # a batch of two demo frames
        torch.rand(1, 3, 100, 250, generator=rng) ** 2,
        half,
    ]
    return frames


def _niqe_equals_pyiqa(frames, tolerance=1e-10):
    """Each frame scored by pyiqa's NIQE (created in the test, on the parameter file the harness's metric uses) and
    by the harness's network (float64): within ``tolerance``; the metric (float32, as the runner stores it) gives
    its network's value. Returns the largest difference."""
    from downstream.metrics import _NIQE

    ours = QualityMetric("niqe")
    assert isinstance(ours.model.net, _NIQE)
    theirs = pyiqa.create_metric(
        "niqe", device="cpu", pretrained_model_path=str(ours.weight_files["pretrained_model_path"])
    )
    worst = 0.0
    for k, x in enumerate(frames):
        x3 = x if x.shape[1] == 3 else x.expand(-1, 3, -1, -1)
        expected, net = theirs(x3), ours.model(x3)
        assert expected.dtype == net.dtype == torch.float64 and expected.shape == net.shape, k
        assert torch.isfinite(expected).all(), k
        worst = max(worst, float((net - expected).abs().max()))
        assert torch.equal(ours(x), net.float().reshape(-1)), k
    assert worst <= tolerance, worst
    return worst


def test_niqe_is_pyiqas_to_1e10():
    """The harness's NIQE (precomputed AGGD grid, filtering by window-value sums) gives pyiqa's values to 1e-10 on the
    demo frames, their blurred and noisy copies, colour, batched, odd-sized and partly constant frames."""
    _niqe_equals_pyiqa(_niqe_frames())


def test_niqe_is_pyiqas_to_1e10_on_a_real_frame(shared_data):
    """The same on a real M3FD frame (1024x768, colour PNG of an infrared frame) and its PIL-bicubic x4 upscaled
    official LR file."""
    m3fd = shared_data / "m3fd"
    lr_path = sorted((m3fd / "lr_x4_difiisr").glob("*x4.png"))[0]
    hr = _rgb(m3fd / "ir" / f"{lr_path.stem[:-2]}.png")
    assert hr.shape[-2:] == (768, 1024)
    lr = Image.open(lr_path).convert("RGB")
    up = np.asarray(lr.resize((lr.width * 4, lr.height * 4), Image.BICUBIC), dtype=np.float32) / 255.0
    _niqe_equals_pyiqa([hr, torch.from_numpy(up).permute(2, 0, 1)[None]])


def test_niqe_with_pyiqas_filter_is_pyiqas_bit_for_bit(monkeypatch):
    """Everything but the Gaussian filtering is pyiqa's computation exactly: with pyiqa's own direct convolution in its
    place, the harness's NIQE (precomputed AGGD grid broadcast instead of repeated) gives pyiqa's values bit for
    bit."""
    from pyiqa.matlab_utils import imfilter

    import downstream.metrics as metrics

    def direct(x, win):  # the frames and their squares, each filtered as pyiqa filters them (one call per half)
        return torch.cat([imfilter(half, win, padding="replicate") for half in x.chunk(2)])

    monkeypatch.setattr(metrics, "_filter_same_replicate", direct)
    frames = _niqe_frames()
    assert _niqe_equals_pyiqa(frames[:3] + frames[-4:], tolerance=0.0) == 0.0


def test_niqe_constant_frame_fails_as_pyiqas():
    """A constant frame has no finite AGGD fit in any block: pyiqa's pinv raises on the NaN covariance, and so does
    the harness's NIQE, with the same error."""
    ours = QualityMetric("niqe")
    theirs = pyiqa.create_metric(
        "niqe", device="cpu", pretrained_model_path=str(ours.weight_files["pretrained_model_path"])
    )
    x = torch.full((1, 3, 192, 192), 0.5)
    errors = []
    for f in (theirs, ours.model):
        with pytest.raises(Exception) as info:  # noqa: PT011 -- compared with pyiqa's below
            f(x)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1]


def test_niqe_other_pyiqa_options_are_pyiqas():
    """pyiqa's NIQE options the configuration does not set (border crop, YCbCr) and one-channel input give pyiqa's
    values too."""
    from pyiqa.archs.niqe_arch import NIQE

    from downstream.metrics import _NIQE

    params = str(BUNDLED_DIR / "niqe_pris_params.mat")
    x = torch.rand(2, 3, 250, 230, generator=torch.Generator().manual_seed(13))
    for options in (dict(crop_border=5), dict(color_space="ycbcr"), dict()):
        theirs = NIQE(pretrained_model_path=params, **options)
        assert float((_NIQE.of(theirs)(x) - theirs(x)).abs().max()) <= 1e-10, options
    gray = x[:, :1]  # one channel: pyiqa scores it as it is (x 255, no Y conversion); the runner gives three
    assert float((_NIQE.of(theirs)(gray) - theirs(gray)).abs().max()) <= 1e-10


def test_niqe_cache_identity_names_its_implementation():
    """Values of the harness's NIQE are not pyiqa's bit for bit: its cache identity says so (no value cached by
    pyiqa's NIQE is read back as this one's), with the parameter file's hash as before."""
    from downstream.metrics import _NIQE

    identity = QualityMetric("niqe").identity()
    assert identity["implementation"] == _NIQE.IMPLEMENTATION
    assert set(identity["weights"]) == {"pretrained_model_path"}


def test_ssim_other_pyiqa_options_are_pyiqas():
    """pyiqa's SSIM options the configuration does not use (downsampling, border crop, all channels, YIQ) give
    pyiqa's values too (1e-12)."""
    from pyiqa.archs.ssim_arch import SSIM

    from downstream.metrics import _SSIM

    rng = torch.Generator().manual_seed(7)
    ref = torch.rand(1, 3, 520, 400, generator=rng)
    x = (ref + 0.2 * torch.rand(ref.shape, generator=rng)).clamp(0, 1)
    for options in (
        dict(downsample=True),
        dict(crop_border=4, color_space="ycbcr"),
        dict(test_y_channel=False),
        dict(),
    ):
        assert float((_SSIM(**options)(x, ref) - SSIM(**options)(x, ref)).abs().max()) <= 1e-12, options


def test_ssim_cache_identity_names_its_implementation():
    """Values of the harness's SSIM are not pyiqa's bit for bit: its cache identity says so (no value cached by
    pyiqa's SSIM is read back as this one's)."""
    from downstream.metrics import _SSIM

    assert QualityMetric("ssim").identity()["implementation"] == _SSIM.IMPLEMENTATION
    assert "implementation" not in QualityMetric("psnr").identity()


def test_reference_memo_computes_a_frame_once_and_keeps_within_its_budget():
    from downstream.metrics import ReferenceMemo

    calls = []

    def compute():
        calls.append(1)
        return (torch.zeros(16, dtype=torch.float64),)  # 128 bytes

    memo = ReferenceMemo(max_bytes=200)
    first = memo.get(("a",), compute)
    assert memo.get(("a",), compute) is first and len(calls) == 1 and memo.bytes == 128
    memo.get(("b",), compute)
    memo.get(("b",), compute)  # over the budget: not kept, computed again
    assert len(calls) == 3 and memo.bytes == 128


def test_runner_computes_ssims_reference_side_once_per_frame(tmp_path, monkeypatch):
    """Three methods of one data set: the reference side of SSIM is computed once per frame, not once per method
    (the values are pyiqa's: the tests above and ``_check_real_pairs``)."""
    from downstream.metrics import _SSIM

    frames = noise_frames(tmp_path / "frames", 3, height=48, width=64)
    sides = []
    original = _SSIM.reference_side

    def counted(self, reference):
        sides.append(reference.shape)
        return original(self, reference)

    monkeypatch.setattr(_SSIM, "reference_side", counted)
    out = tmp_path / "run"
    argv = ["--datasets", f"folder:{frames}", "--methods", "bicubic,nearest,hr", "--tasks", "quality"]
    assert run_main([*argv, "--metrics", "ssim", "--out", str(out), "--quiet", "--no-report"]) == 0
    assert len(sides) == 3
    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    hr = df[(df.method == "hr") & (df.metric == "ssim") & (df["class"] == "all")]
    assert hr.value.iloc[0] == 1.0 and df[df.metric == "ssim"].error.isna().all()
