"""Image-quality metrics, a registry over pyiqa (``configs/metrics.yaml``).

Protocol (the official DifIISR evaluation): PSNR and SSIM on the Y channel of YCbCr, no border
crop; LPIPS with AlexNet v0.1; CLIP-IQA, MUSIQ and NIQE as pyiqa defines them. Single-channel
frames are replicated to three equal channels first, exactly as the official 3-channel gray PNGs
are, so Y = 16/255 + 219/255 * gray.

Weights are never downloaded and never unpickled by a library: pyiqa's ``load_pretrained_network``
and torchvision's ``load_state_dict_from_url`` read files with ``torch.load(weights_only=False)``,
so no file is handed to them. Every file a metric needs is an entry of ``configs/weights.yaml``
resolved in the weights directory and read by :mod:`sr.checkpoint` (``weights_only=True`` or
safetensors); the networks are then built without weights and given the loaded state dicts:

- ``lpips``: :class:`sr.guidance.perceptual.LPIPSLoss` with the AlexNet trunk (the same LPIPS v0.1
  computation as pyiqa's, tested equal to it), weights ``torchvision_alexnet`` + ``pyiqa_lpips_alex``;
- ``musiq``: ``pyiqa.create_metric("musiq", pretrained=False)`` and a strict ``load_state_dict``;
- ``clipiqa``: pyiqa builds CLIP only through its own loader, which opens a TorchScript archive by
  path and rebuilds CLIP from the archive's ``state_dict()``. It is handed an archive that this module
  writes into a private temporary folder: a module tree holding nothing but the tensors the safe
  loader read (``clip_rn50_state``: OpenAI's TorchScript RN50 converted once by ``python -m sr.weights
  convert clip_rn50``, which checks the archive's sha256 first), so no foreign code is ever loaded;
- ``niqe``: pyiqa reads its MATLAB parameter file with ``scipy.io.loadmat`` (no code in .mat files).

A missing file raises MissingWeightsError before anything is built. ``random_weights=True`` builds
the networks with seeded random weights instead when a file is missing (tests only; files that are
there are used); the metric then carries the ``random_weights`` flag, which every table shows. A role with a
``fallback`` (NIQE's pristine parameters, bundled in ``downstream/data``) uses the bundled file when
its own is missing, and the metric carries the fallback's flag instead of failing.

Metrics computed by the project itself (``function:`` entries, the infrared statistics of
``downstream.irstats``) need no weights. Each spec also says the metric's kind (reference /
no-reference), direction, score range and smallest frame, which the reports use to order columns and
orient plots.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sr import weights as weights_registry
from sr.checkpoint import CheckpointError, extract_state_dict, load_checkpoint, load_into
from sr.config import CONFIG_DIR, read_yaml
from sr.errors import ConfigError, MissingWeightsError, UserError, check_keys
from sr.registry import Registry
from sr.vocab import FLAG_MARKS, FLAG_RANDOM_WEIGHTS

_SPEC_KEYS = {
    "pyiqa",
    "function",
    "options",
    "reference",
    "lr_input",
    "higher_better",
    "range",
    "min_size",
    "files",
    "fallback",
}
BUNDLED_DIR = Path(__file__).resolve().parent / "data"
KIND_REFERENCE = "reference"
KIND_NO_REFERENCE = "no-reference"
#: parameter files pyiqa may open itself: formats that hold data only (NIQE's MATLAB file)
_PARAMETER_SUFFIXES = (".mat",)
#: CLIP RN50 as pyiqa's CLIP-IQA uses it (for random weights: the shapes of OpenAI's RN50)
_CLIP_RN50 = dict(
    embed_dim=1024,
    image_resolution=224,
    vision_layers=(3, 4, 6, 3),
    vision_width=64,
    vision_patch_size=None,
    context_length=77,
    vocab_size=49408,
    transformer_width=512,
    transformer_heads=8,
    transformer_layers=12,
)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    pyiqa: str | None
    reference: bool
    higher_better: bool
    options: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    function: str | None = None  # "module:callable" for metrics computed by the project
    range: tuple[float | None, float | None] = (None, None)
    fallback_files: dict[str, str] = field(default_factory=dict)  # role -> file name in BUNDLED_DIR
    fallback_flag: str = ""
    min_size: tuple[int, int] = (1, 1)  # smallest frame (H, W) the metric is defined on
    lr_input: bool = False  # compares the output with the LR input through the degradation operator (lr_psnr)

    @property
    def kind(self) -> str:
        return KIND_REFERENCE if self.reference else KIND_NO_REFERENCE


def _spec(path: Path, name: str, spec: dict[str, Any]) -> MetricSpec:
    check_keys(f"{path}: {name}", spec, _SPEC_KEYS)
    if ("pyiqa" in spec) == ("function" in spec):
        raise ConfigError(f"{path}: metric {name!r} needs exactly one of 'pyiqa' or 'function'")
    low, high = spec.get("range") or (None, None)
    fallback = spec.get("fallback") or {}
    check_keys(f"{path}: {name}: fallback", fallback, {"files", "flag"})
    fallback_files = dict(fallback.get("files") or {})
    flag = str(fallback.get("flag", ""))
    if fallback_files and flag not in FLAG_MARKS:
        raise ConfigError(f"{path}: metric {name!r}: fallback flag {flag!r} is not one of {sorted(FLAG_MARKS)}")
    for role, file in fallback_files.items():
        if role not in (spec.get("files") or {}) or not (BUNDLED_DIR / file).is_file():
            raise ConfigError(
                f"{path}: metric {name!r}: fallback {role}: {file!r} is not a bundled file "
                f"({BUNDLED_DIR}) for one of its 'files'"
            )
    return MetricSpec(
        name=name,
        pyiqa=spec.get("pyiqa"),
        function=spec.get("function"),
        reference=bool(spec.get("reference", False)),
        higher_better=bool(spec.get("higher_better", True)),
        options=dict(spec.get("options") or {}),
        files=dict(spec.get("files") or {}),
        range=(low, high),
        fallback_files=fallback_files,
        fallback_flag=flag if fallback_files else "",
        min_size=tuple(int(v) for v in spec.get("min_size") or (1, 1)),
        lr_input=bool(spec.get("lr_input", False)),
    )


@lru_cache(maxsize=1)
def _yaml_specs() -> dict[str, MetricSpec]:
    path = CONFIG_DIR / "metrics.yaml"
    return {name: _spec(path, name, spec) for name, spec in read_yaml(path).items()}


def metric_spec(name: str) -> MetricSpec:
    """Metric ``name``: an entry of configs/metrics.yaml, or a function registered as a plug-in
    (``sr.plugins.register("metric", name, fn, reference=..., higher_better=...)``; its keys are checked the same)."""
    entry = METRICS.get(name)  # an unknown name: UnknownNameError with "did you mean"
    if entry.factory is QualityMetric:
        return _yaml_specs()[name]
    function = f"{entry.factory.__module__}:{entry.factory.__qualname__}"
    return _spec(f"metric plug-in of {entry.source}", name, {**entry.metadata, "function": function})


def metric_specs() -> dict[str, MetricSpec]:
    """Every metric (:func:`metric_spec`) by name."""
    return {name: metric_spec(name) for name in METRICS.names()}


def resolve_metric_files(
    spec: MetricSpec, weights_dir: str | os.PathLike | None = None, *, random_weights: bool = False
) -> tuple[dict[str, Path], tuple[str, ...]]:
    """The files a metric reads (role -> path) and the flags that choice puts on its numbers.

    A missing file with a bundled fallback is replaced by it (flagged). With ``random_weights`` and one of the
    other files missing, those roles stay unresolved (their networks get random weights); otherwise a missing
    file raises MissingWeightsError naming file, URL and directory.
    """
    own = [entry for role, entry in spec.files.items() if role not in spec.fallback_files]
    # random networks only when a weights file is missing (files that are there are always used)
    random = bool(own) and weights_registry.random_where_missing(
        random_weights, lambda: [weights_registry.resolve(e, weights_dir) for e in own]
    )
    files: dict[str, Path] = {}
    flags: set[str] = set()
    for role, entry in spec.files.items():
        if role in spec.fallback_files:
            try:
                files[role] = weights_registry.resolve(entry, weights_dir)
            except MissingWeightsError:
                files[role] = BUNDLED_DIR / spec.fallback_files[role]
                flags.add(spec.fallback_flag)
        elif not random:
            files[role] = weights_registry.resolve(entry, weights_dir)
    return files, tuple(sorted(flags))


def metric_provenance(
    names, weights_dir: str | os.PathLike | None = None, *, random_weights: bool = False
) -> dict[str, dict[str, Any]]:
    """Per metric: kind, direction, the file of each role with its sha256, and the flags (for run.json)."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        spec = metric_spec(name)
        record: dict[str, Any] = {"kind": spec.kind, "higher_better": spec.higher_better}
        try:
            files, flags = resolve_metric_files(spec, weights_dir, random_weights=random_weights)
            record["files"] = {
                role: {"path": str(p), "sha256": weights_registry.sha256_of(p), "bundled": p.parent == BUNDLED_DIR}
                for role, p in files.items()
            }
            record["flags"] = list(flags)
        except MissingWeightsError as exc:
            record["error"] = str(exc)
        out[name] = record
    return out


def _add_metrics(registry: Registry) -> None:
    for name, spec in _yaml_specs().items():
        registry.add(name, QualityMetric, **{k: v for k, v in asdict(spec).items() if k != "name"})


#: quality metrics by name: configs/metrics.yaml (each entry's metadata is its MetricSpec's fields) and plug-ins
METRICS = Registry("metric", populate=_add_metrics, plugin_kind="metric")


def list_metrics() -> list[str]:
    return METRICS.names()


# ----- network builders: (options, files by role or None for random weights) -> module(image[, ref]) -------


def _pyiqa(name: str, options: dict[str, Any]) -> torch.nn.Module:
    import pyiqa

    return pyiqa.create_metric(name, device="cpu", as_loss=False, **options)


def _build_lpips(options: dict[str, Any], files: dict[str, Path] | None, weights_dir) -> torch.nn.Module:
    from sr.guidance.perceptual import LPIPSLoss

    if options.get("net", "alex") != "alex" or str(options.get("version", "0.1")) != "0.1":
        raise ConfigError(f"lpips: only net: alex, version: '0.1' is supported, got {options}")
    torch.manual_seed(0)
    return LPIPSLoss(weights_dir=weights_dir, random_weights=files is None, trunk="alex")


def _build_musiq(options: dict[str, Any], files: dict[str, Path] | None, weights_dir) -> torch.nn.Module:
    torch.manual_seed(0)
    metric = _pyiqa("musiq", {**options, "pretrained": False})
    if files is not None:
        load_into(metric.net, files["pretrained_model_path"], "pyiqa MUSIQ")
    return metric


def _build_clipiqa(options: dict[str, Any], files: dict[str, Path] | None, weights_dir) -> torch.nn.Module:
    if files is None:
        import pyiqa.archs.clip_model as clip_model

        torch.manual_seed(0)
        state = clip_model.CLIP(**_CLIP_RN50).state_dict()
    else:
        state = extract_state_dict(load_checkpoint(files["backbone"]), keys=())
    with tempfile.TemporaryDirectory(prefix="irsr-clip-") as private:  # mode 0700: nobody else can swap it
        staged = Path(private) / "clip_tensors.pt"
        torch.jit.save(torch.jit.script(_tensor_tree(state)), staged)
        try:
            return _pyiqa("clipiqa", {**options, "backbone": str(staged)})
        except (RuntimeError, KeyError) as exc:  # pyiqa's CLIP builder on tensors of the wrong shape / keys
            raise CheckpointError(
                f"{files['backbone'] if files else 'random CLIP'}: not a CLIP RN50 state dict "
                f"({str(exc).splitlines()[0]})"
            ) from None


class _Entropy(torch.nn.Module):
    """pyiqa's ``entropy`` (8-bit grey-level histogram of the YIQ luma, MATLAB's ``entropy``) with the histogram
    counted by ``bincount`` instead of summing a (N, 1, H, W, 256) int64 one-hot tensor (157 MB for one 240x320
    frame, about 0.1 s of CPU per call): the same counts and the same float operations after them, so the same
    values bit for bit (``tests/test_metrics.py`` compares it with pyiqa's own)."""

    def __init__(self, data_range: float = 255.0, eps: float = 1e-8, color_space: str = "yiq"):
        super().__init__()
        self.data_range, self.eps, self.color_space = data_range, eps, color_space

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from pyiqa.utils.color_util import to_y_channel

        if x.shape[1] == 3:
            x = to_y_channel(x, self.data_range, self.color_space)
        levels = x.long().flatten(1)
        bins = int(self.data_range + 1)
        if levels.numel() and (levels.min() < 0 or levels.max() >= bins):  # one_hot's own check, same message
            raise RuntimeError("Class values must be smaller than num_classes.")
        hist = torch.stack([torch.bincount(row, minlength=bins) for row in levels])
        hist = hist / hist.sum(dim=1, keepdim=True)
        return -torch.sum(hist * torch.log2(hist + self.eps), dim=1)


def _build_entropy(options: dict[str, Any], files: dict[str, Path] | None, weights_dir) -> torch.nn.Module:
    metric = _pyiqa("entropy", options)
    metric.net = _Entropy(**options)
    return metric


def _filter_valid(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """pyiqa's ``filter2(x, win, 'valid')`` (a correlation of each channel of ``x`` [N,C,H,W] with ``win``
    [C,1,k,k]) through float64 FFTs: the circular convolution of the H x W frame is free of wrap-around exactly on
    the 'valid' positions. Summation order differs from the direct convolution, so values agree to rounding (1e-16
    relative), at a tenth of the CPU time of torch's float64 direct convolution on CPU."""
    (h, w), (kh, kw) = x.shape[-2:], win.shape[-2:]
    spectrum = torch.fft.rfft2(x, s=(h, w)) * torch.fft.rfft2(win[:, 0].flip(-2, -1), s=(h, w))
    return torch.fft.irfft2(spectrum, s=(h, w))[..., kh - 1 :, kw - 1 :]


class _SSIM(torch.nn.Module):
    """pyiqa's ``ssim`` (``pyiqa.archs.ssim_arch``: Y channel rounded to 8 bits, float64, 11x11 Gaussian window,
    'valid' filtering, the same formula in the same float64 operations) with two changes for speed: the five
    Gaussian filterings go through FFTs (:func:`_filter_valid`) instead of torch's float64 direct convolution
    (about 11x less CPU on a 240x320 frame), and the work is split in two: :meth:`reference_side` is what depends on
    the reference frame alone (its Y, filtered mean and variance), so a run computes it once per reference frame
    (:class:`ReferenceMemo`) instead of once per method; :meth:`compare` filters the image's three products in one
    call. Scores equal pyiqa's to 1e-12 (``tests/test_metrics.py`` on synthetic, demo and real frames; measured at
    most 1.5e-13 on the demo frames), so the metric's cache identity names this implementation."""

    IMPLEMENTATION = "irsr fft ssim (pyiqa's to 1e-12)"

    def __init__(self, channels=3, downsample=False, test_y_channel=True, color_space="yiq", crop_border=0.0):
        super().__init__()
        self.downsample, self.test_y_channel, self.color_space = downsample, test_y_channel, color_space
        self.crop_border, self.data_range = crop_border, 255

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        from pyiqa.archs.func_util import preprocess_rgb

        if self.crop_border != 0:
            b = self.crop_border
            x = x[..., b:-b, b:-b]
        x = preprocess_rgb(x, self.test_y_channel, self.data_range, self.color_space).to(torch.float64)
        f = max(1, round(min(x.size()[-2:]) / 256))
        return F.avg_pool2d(x, kernel_size=f) if f > 1 and self.downsample else x

    def _window(self, x: torch.Tensor) -> torch.Tensor:
        from pyiqa.matlab_utils import fspecial

        return fspecial(11, 1.5, x.shape[1]).to(x)

    def reference_side(self, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Y, its filtered mean mu2, its filtered variance sigma2_sq) of a reference frame."""
        y = self._prepare(reference)
        win = self._window(y)
        mu2, y_sq = _filter_valid(torch.cat([y, y * y]), win).split(y.shape[0])
        sigma2_sq = y_sq - mu2.pow(2)
        return y, mu2, sigma2_sq

    def compare(self, image: torch.Tensor, side: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """SSIM of ``image`` against the reference whose :meth:`reference_side` is ``side``, one score per image."""
        y, mu2, sigma2_sq = side
        x = self._prepare(image)
        if x.shape != y.shape:
            raise ValueError(f"ssim: image {tuple(x.shape)} vs reference {tuple(y.shape)} after preprocessing")
        c1, c2 = (0.01 * self.data_range) ** 2, (0.03 * self.data_range) ** 2
        n = x.shape[0]
        mu1, x_sq, xy = _filter_valid(torch.cat([x, x * x, x * y]), self._window(x)).split(n)
        mu1_sq, mu2_sq = mu1.pow(2), mu2.pow(2)
        mu1_mu2 = mu1 * mu2
        sigma1_sq = x_sq - mu1_sq
        sigma12 = xy - mu1_mu2
        cs_map = F.relu((2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2))
        ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
        return ssim_map.mean([1, 2, 3])

    def forward(self, image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.compare(image, self.reference_side(reference))


def _build_ssim(options: dict[str, Any], files: dict[str, Path] | None, weights_dir) -> torch.nn.Module:
    metric = _pyiqa("ssim", options)
    metric.net = _SSIM(**options)
    return metric


def _filter_same_replicate(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """pyiqa's ``imfilter(x, win, padding='replicate')`` (a 'same' correlation of each [N,1,H,W] frame with the
    [1,1,k,k] window over an edge-replicated border, odd k) for a window with the symmetries of a Gaussian (the same
    value at (i, j), (j, i) and their mirror images): the pixels under each distinct window value are summed first
    (pair sums along rows, then along columns), then each sum is multiplied by its value, about 40 float64 array
    operations in place of torch's float64 direct convolution (im2col + GEMM).

    On integer frames below 1024 (NIQE's first scale: 8-bit Y and its square) every sum and product is exact in
    float64 (products of a float32 window value by an integer below 2^20, sums on the grid of the smallest value's
    last bit below 2^53), so the result is the exact correlation, which is also what the direct convolution gives:
    the same values bit for bit; an all-zero neighbourhood gives exactly 0, as it does there. On other values the
    two differ by rounding only (about 1e-16 relative)."""
    k = win.shape[-1]
    r = k // 2
    if win.shape[-2:] != (k, k) or k % 2 == 0:
        raise ValueError(f"a square window of odd size is needed, got {tuple(win.shape)}")
    w2 = win.reshape(k, k)
    if not (torch.equal(w2, w2.T) and torch.equal(w2, w2.flip(0)) and torch.equal(w2, w2.flip(1))):
        raise ValueError("the window lacks a Gaussian's symmetries")
    h, w = x.shape[-2:]
    p = F.pad(x, (r, r, r, r), mode="replicate")
    rows = [p[..., r : r + w]] + [p[..., r - a : r - a + w] + p[..., r + a : r + a + w] for a in range(1, r + 1)]

    def cols(t: torch.Tensor, b: int) -> torch.Tensor:
        return t[..., r : r + h, :] if b == 0 else t[..., r - b : r - b + h, :] + t[..., r + b : r + b + h, :]

    out = None
    for a in range(r + 1):
        for b in range(a, r + 1):
            total = cols(rows[a], b) if a == b else cols(rows[a], b) + cols(rows[b], a)
            term = total * float(w2[r + a, r + b])
            out = term if out is None else out + term
    return out


#: the shifts of compute_feature's pairwise products (horizontal, vertical, two diagonals)
_NIQE_SHIFTS = ([0, 1], [1, 0], [1, 1], [1, -1])


class _NIQE(torch.nn.Module):
    """pyiqa's ``niqe`` (``pyiqa.archs.niqe_arch.calculate_niqe``: Y channel rounded to 8 bits, float64, 96x96
    blocks at two scales, 18 AGGD features per block and scale, the pristine model's Mahalanobis-like distance) with
    two changes for speed, everything else pyiqa's own functions (``to_y_channel``, ``blockproc``, ``imresize``,
    ``nanmean``, ``nancov``) or the same float64 operations in the same order:

    - ``estimate_aggd_param`` (10 calls per frame) takes the constant grid of shape parameters (``torch.arange(0.2,
      10.001, 0.001)``) and its ratio ``r_gam`` (three ``lgamma`` over 9,801 values) computed once, in the same
      operations as pyiqa's, and broadcasts it against the blocks instead of ``.repeat``-ing it per block: the same
      numbers, bit for bit (this change alone gives pyiqa's NIQE exactly);
    - the local mean and variance (7x7 Gaussian, replicated border, at both scales) are filtered by summing the pixels
      under each of the window's 10 distinct values first (:func:`_filter_same_replicate`) instead of torch's float64
      direct convolution: on the first scale (8-bit Y) both give the exact correlation, bit for bit.

    Scores equal pyiqa's to 1e-10 (``tests/test_metrics.py``: demo frames and blurred / noisy copies, a real M3FD
    frame, gray and colour, batches, sizes that are not multiples of 96, partly constant frames; a constant frame
    fails in both with the same error; measured at most 1.2e-11), not bit for bit: the second scale's frame (pyiqa's
    float32 bicubic resize) is not on an integer grid, where the filter's sums round differently. So the metric's
    cache identity names this implementation. FFT filtering was measured faster (3 vs 7 ms at 240x320) but is not
    exact: it turns the exact zeros of all-black neighbourhoods (which pyiqa's AGGD fits count as neither left nor
    right) into +-1e-11 and moved a real M3FD frame's score by 3.5e-3. The pristine model is
    the one pyiqa's ``NIQE`` read from the parameter file (``scipy.io.loadmat``): this module takes it from there."""

    IMPLEMENTATION = "irsr niqe, window-value sums (pyiqa's to 1e-10)"

    def __init__(self, mu_pris_param, cov_pris_param, crop_border=0, color_space="yiq", block_size=(96, 96)):
        super().__init__()
        self.crop_border, self.color_space, self.block_size = crop_border, color_space, block_size
        self.register_buffer("mu_pris_param", mu_pris_param, persistent=False)
        self.register_buffer("cov_pris_param", cov_pris_param, persistent=False)
        gam = torch.arange(0.2, 10 + 0.001, 0.001).to(torch.float64)  # pyiqa's grid, as estimate_aggd_param makes it
        r_gam = (2 * torch.lgamma(2.0 / gam) - (torch.lgamma(1.0 / gam) + torch.lgamma(3.0 / gam))).exp()
        self.register_buffer("gam", gam, persistent=False)
        self.register_buffer("r_gam", r_gam, persistent=False)

    @classmethod
    def of(cls, net: torch.nn.Module) -> _NIQE:
        """The harness's NIQE with the options and pristine model of pyiqa's ``NIQE`` module ``net``."""
        return cls(net.mu_pris_param, net.cov_pris_param, net.crop_border, net.color_space)

    def _aggd(self, block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """pyiqa's ``estimate_aggd_param`` (alpha, beta_l, beta_r of each [B,1,h,w] block), its grid precomputed."""
        mask_left, mask_right = block < 0, block > 0
        count_left = mask_left.sum(dim=(-1, -2), dtype=torch.float32)
        count_right = mask_right.sum(dim=(-1, -2), dtype=torch.float32)
        square = block.pow(2)  # (block * mask).pow(2) == block.pow(2) * mask element by element, NaN and inf too
        left_std = torch.sqrt((square * mask_left).sum(dim=(-1, -2)) / (count_left))
        right_std = torch.sqrt((square * mask_right).sum(dim=(-1, -2)) / (count_right))
        gammahat = left_std / right_std
        rhat = block.abs().mean(dim=(-1, -2)).pow(2) / square.mean(dim=(-1, -2))
        rhatnorm = (rhat * (gammahat.pow(3) + 1) * (gammahat + 1)) / (gammahat.pow(2) + 1).pow(2)
        gam, r_gam = self.gam.to(block), self.r_gam.to(block)
        alpha = gam[(r_gam - rhatnorm).abs().argmin(dim=-1)]
        scale = (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)).exp().sqrt()
        return alpha, left_std.squeeze(-1) * scale, right_std.squeeze(-1) * scale

    def _features(self, block: torch.Tensor, _args=None) -> torch.Tensor:
        """pyiqa's ``compute_feature`` (NIQE's 18 features of each block; the IL-NIQE branch left out). The five AGGD
        fits stay five calls, as pyiqa makes them: batched into one they were slower (the concatenation's copies) and
        not bit-identical on frames of few blocks (torch splits a reduction with few outputs across threads)."""
        n, aggd_block = block.shape[0], block[:, [0]]
        alpha, beta_l, beta_r = self._aggd(aggd_block)
        feat = [alpha, (beta_l + beta_r) / 2]
        for shift in _NIQE_SHIFTS:
            alpha, beta_l, beta_r = self._aggd(aggd_block * torch.roll(aggd_block, shift, dims=(2, 3)))
            mean = (beta_r - beta_l) * (torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha)).exp()
            feat.extend((alpha, mean, beta_l, beta_r))
        return torch.cat([x.reshape(n, 1) for x in feat], dim=-1)

    def _normalize(self, img: torch.Tensor) -> torch.Tensor:
        """pyiqa's ``normalize_img_with_gauss(img, padding='replicate')``, both filterings in one call."""
        from pyiqa.archs.func_util import safe_sqrt
        from pyiqa.matlab_utils import fspecial

        mu, std = _filter_same_replicate(torch.cat([img, img**2]), fspecial(7, 7.0 / 6, 1).to(img)).split(len(img))
        sigma = safe_sqrt((std - mu**2).abs())
        return (img - mu) / (sigma + 1)

    def _niqe(self, img: torch.Tensor, mu_pris_param: torch.Tensor, cov_pris_param: torch.Tensor) -> torch.Tensor:
        """pyiqa's ``niqe`` on the float64 Y frames ``img`` [B,1,H,W]."""
        from pyiqa.matlab_utils import blockproc, imresize, nancov, nanmean

        (bh, bw), (h, w) = self.block_size, img.shape[-2:]
        img = img[..., 0 : (h // bh) * bh, 0 : (w // bw) * bw]
        distparam = []
        for scale in (1, 2):
            distparam.append(blockproc(self._normalize(img), [bh // scale, bw // scale], fun=self._features))
            if scale == 1:
                img = imresize(img / 255.0, scale=0.5, antialiasing=True) * 255.0
        distparam = torch.cat(distparam, -1)
        mu_distparam, cov_distparam = nanmean(distparam, dim=1), nancov(distparam)
        invcov_param = torch.linalg.pinv((cov_pris_param + cov_distparam) / 2)
        diff = (mu_pris_param - mu_distparam).unsqueeze(1)
        return torch.sqrt(torch.bmm(torch.bmm(diff, invcov_param), diff.transpose(1, 2)).squeeze())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from pyiqa.archs.func_util import diff_round
        from pyiqa.utils.color_util import to_y_channel

        if x.shape[1] == 3:
            x = to_y_channel(x, 255, self.color_space)
        elif x.shape[1] == 1:
            x = x * 255
        img = diff_round(x).to(torch.float64)
        mu_pris_param = self.mu_pris_param.to(img).repeat(img.size(0), 1)
        cov_pris_param = self.cov_pris_param.to(img).repeat(img.size(0), 1, 1)
        if self.crop_border != 0:
            b = self.crop_border
            img = img[..., b:-b, b:-b]
        return self._niqe(img, mu_pris_param, cov_pris_param)


#: bytes of reference-side tensors a run keeps (ReferenceMemo); beyond it a frame's are computed per method again
REFERENCE_MEMO_BYTES = 1 << 30


class ReferenceMemo:
    """What a reference metric derives from a reference frame alone (SSIM's filtered Y statistics), kept for the
    run: every method of a data set is scored against the same reference frames. Keyed by (metric name, the key the
    caller gives the frame: the run uses its cache key of the data set and the frame's id and file fingerprint);
    holds at most ``max_bytes`` of tensors, later frames are computed every time (same values, no saving). One per
    run, on ``benchmarks.resources.Resources`` (no module state)."""

    def __init__(self, max_bytes: int = REFERENCE_MEMO_BYTES):
        self.max_bytes, self.bytes = max_bytes, 0
        self._entries: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def get(self, key: tuple, compute: Callable[[], tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        if key in self._entries:
            return self._entries[key]
        value = compute()
        size = sum(t.numel() * t.element_size() for t in value)
        if self.bytes + size <= self.max_bytes:
            self._entries[key] = value
            self.bytes += size
        return value


def _tensor_tree(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A module whose ``state_dict()`` is ``state`` (dotted keys become nested modules; no code of its own)."""
    root = torch.nn.Module()
    for key, value in state.items():
        *path, leaf = key.split(".")
        node = root
        for part in path:
            if part not in node._modules:
                node.add_module(part, torch.nn.Module())
            node = node._modules[part]
        node.register_buffer(leaf, value)
    return root


_BUILDERS: dict[str, Callable[[dict[str, Any], dict[str, Path] | None, Any], torch.nn.Module]] = {
    "lpips": _build_lpips,
    "musiq": _build_musiq,
    "clipiqa": _build_clipiqa,
    "entropy": _build_entropy,
    "ssim": _build_ssim,
}


#: pyiqa metrics built by pyiqa (its parameter files read by it) whose network the harness replaces with its own
_OWN_NETWORKS: dict[str, Callable[[torch.nn.Module], torch.nn.Module]] = {"niqe": _NIQE.of}


class QualityMetric:
    """One pyiqa metric; call it on float [B,C,H,W] in [0,1] (and a reference for FR metrics)."""

    libraries = ("pyiqa", "torch")  # distributions that compute the scores (in their cache key)

    def __init__(
        self,
        name: str,
        *,
        device: str = "cpu",
        weights_dir: str | os.PathLike | None = None,
        random_weights: bool = False,
        niqe_params: str | os.PathLike | None = None,
    ):
        self.spec = metric_spec(name)
        self.name = name
        self.device = torch.device(device)
        options = dict(self.spec.options)
        self.weight_files: dict[str, Path] = {}
        self._flags: tuple[str, ...] = ()
        if niqe_params is not None and self.spec.pyiqa == "niqe":
            self.weight_files["pretrained_model_path"] = Path(niqe_params)
        else:
            self.weight_files, self._flags = resolve_metric_files(self.spec, weights_dir, random_weights=random_weights)
        self.random_weights = set(self.weight_files) != set(self.spec.files)
        if self.spec.function is not None:
            self.model = _function(self.spec)
            return
        builder = _BUILDERS.get(self.spec.pyiqa)
        if builder is None:  # no network: pyiqa builds it, handed only parameter files it cannot unpickle
            for role, path in self.weight_files.items():
                if role != "pretrained_model_path" or path.suffix.lower() not in _PARAMETER_SUFFIXES:
                    raise ConfigError(
                        f"metric {name!r}: pyiqa would read {path} ({role}) with an unrestricted "
                        f"unpickler; give it a builder in downstream/metrics.py that loads the file "
                        f"through sr.checkpoint"
                    )
                options[role] = str(path)
        try:
            if builder is None:
                model = _pyiqa(self.spec.pyiqa, options)
                if self.spec.pyiqa in _OWN_NETWORKS:  # pyiqa's module read the parameters; the harness's computes
                    model.net = _OWN_NETWORKS[self.spec.pyiqa](model.net)
            else:
                model = builder(options, None if self.random_weights else self.weight_files, weights_dir)
        except Exception as exc:  # parsers of weights / parameter files raise many types (scipy: MatReadError)
            if not self.weight_files or isinstance(exc, UserError):
                raise  # nothing of the user's was read (a bug), or already a clear error
            files = ", ".join(str(p) for p in self.weight_files.values())
            raise CheckpointError(
                f"metric {name!r}: cannot use {files}: {type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no details'}"
            ) from exc
        self.model = model.to(self.device).eval()

    @property
    def memoizes_reference(self) -> bool:
        """Whether the metric computes part of its work from the reference alone, which a call can take from a
        :class:`ReferenceMemo` (``memo`` / ``reference_key``)."""
        return isinstance(getattr(self.model, "net", None), _SSIM)

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(sorted(set(self._flags) | ({FLAG_RANDOM_WEIGHTS} if self.random_weights else set())))

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pyiqa": self.spec.pyiqa,
            "function": self.spec.function,
            "options": self.spec.options,
            "random_weights": self.random_weights,
            "weights": {role: weights_registry.sha256_of(p) for role, p in self.weight_files.items()},
            # a network of the harness's own in place of pyiqa's, not bit-identical to it: in the values' cache key
            **(
                {"implementation": impl}
                if (impl := getattr(getattr(self.model, "net", None), "IMPLEMENTATION", None))
                else {}
            ),
        }

    @torch.inference_mode()
    def __call__(
        self,
        image: torch.Tensor,
        reference: torch.Tensor | None = None,
        *,
        lr: torch.Tensor | None = None,
        operator: Callable[[torch.Tensor], torch.Tensor] | None = None,
        memo: ReferenceMemo | None = None,
        reference_key: tuple | None = None,
    ) -> torch.Tensor:
        """Per-image scores, shape [B]. An ``lr_input`` metric takes the LR input and the operator that made it
        (``downstream.lr_consistency.degradation_operator``) instead of a reference. With ``memo`` and
        ``reference_key`` (what identifies ``reference`` within the run), what the metric derives from the reference
        alone is computed once per key (SSIM; the same scores)."""
        (min_h, min_w), (h, w) = self.spec.min_size, image.shape[-2:]
        if h < min_h or w < min_w:
            raise ValueError(f"metric {self.name} needs frames of at least {min_h}x{min_w} pixels, got {h}x{w}")
        if self.spec.lr_input:
            if lr is None or operator is None:
                raise ValueError(f"metric {self.name} needs the LR input and the operator that made it")
            return self.model(image.to(self.device), lr.to(self.device), operator).detach().float().reshape(-1).cpu()
        image = _three_channels(image).to(self.device)
        if self.spec.reference:
            if reference is None:
                raise ValueError(f"metric {self.name} needs a reference image")
            reference = _three_channels(reference).to(self.device)
            if reference.shape != image.shape:
                raise ValueError(
                    f"metric {self.name}: image {tuple(image.shape)} vs reference {tuple(reference.shape)}"
                )
            net = getattr(self.model, "net", None)
            if self.memoizes_reference and memo is not None and reference_key is not None:
                self.model.is_valid_input(image)  # pyiqa's input checks, as its forward makes them

                def side() -> tuple[torch.Tensor, ...]:
                    self.model.is_valid_input(reference)
                    return net.reference_side(reference)

                score = net.compare(image, memo.get((self.name, *reference_key), side))
            else:
                score = self.model(image, reference)
        else:
            score = self.model(image)
        return score.detach().float().reshape(-1).cpu()


def _function(spec: MetricSpec):
    """The callable of a ``function:`` metric (``module:attr``)."""
    from sr.config import import_factory

    return import_factory(spec.function, f"metric {spec.name!r}: function")


def _three_channels(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
