"""Reading infrared frames of any common format into float32 arrays in [0, 1], and writing SR outputs.

Accepted: PNG, TIFF, JPEG, BMP in modes 1, L, P (palette), LA, RGB, RGBA, I;16 (16-bit), I and F
(float TIFF). Alpha is dropped (thermal frames carry no meaningful alpha); palette images are
expanded through their palette. Integer images of more than 8 bits are mapped to [0, 1] by the
``high_bit_rule``:

* ``"agc"`` (default): linear stretch between the 0.5th and 99.5th percentile of the frame, clipped,
  the way a thermal camera's automatic gain control displays raw counts;
* ``"full"``: divide by the type's maximum (65535 for 16-bit);
* ``(lo, hi)``: a fixed linear window of raw counts, the same for every frame (use this when raw
  counts are radiometric and must stay comparable across frames).

Float images are clipped to [0, 1]. SR outputs are written as 8-bit PNG (``write_png``); references are
scored on the same grid (``on_png_grid``), and ``stored_image`` is what reading such a PNG back returns.
Channels: ``"auto"`` returns one channel when all channels are equal (gray stored as RGB, as M3FD does) and
three otherwise; ``1`` averages to gray; ``3`` repeats. A file that cannot be read raises
:class:`ImageReadError` naming the file and the cause, and so does an image larger than :func:`max_pixels`
(``IRSR_MAX_PIXELS``, default 25 million pixels): its size is read from the header and checked before
anything is decoded, so a small file declaring a huge frame (a "decompression bomb") costs nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from downstream.errors import DataError, ImageReadError
from sr.atomic import atomic_path
from sr.errors import ConfigError
from sr.vocab import ENV_MAX_PIXELS

HighBitRule = str | tuple[float, float]
DEFAULT_MAX_PIXELS = 25_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _to_float(img: Image.Image, high_bit_rule: HighBitRule, path: Path) -> np.ndarray:
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("1", "L", "LA", "RGB", "RGBA", "CMYK", "YCbCr"):
        if mode == "LA":
            img = img.getchannel("L")
        elif mode in ("RGBA", "CMYK", "YCbCr"):
            img = img.convert("RGB")
        elif mode == "1":
            img = img.convert("L")
        return np.asarray(img, dtype=np.float32) / 255.0
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        raw = np.asarray(img).astype(np.float64)
        if isinstance(high_bit_rule, (tuple, list)):
            lo, hi = map(float, high_bit_rule)
        elif high_bit_rule == "full":
            lo, hi = 0.0, 65535.0 if mode.startswith("I;16") else float(max(raw.max(), 1.0))
        elif high_bit_rule == "agc":
            lo, hi = np.percentile(raw, [0.5, 99.5])
        else:
            raise ImageReadError(f"{path}: unknown high_bit_rule {high_bit_rule!r} (use 'agc', 'full' or (lo, hi))")
        if hi <= lo:
            return np.zeros(raw.shape, dtype=np.float32)
        return np.clip((raw - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    if mode == "F":
        return np.clip(np.nan_to_num(np.asarray(img, dtype=np.float32)), 0.0, 1.0)
    raise ImageReadError(f"{path}: unsupported image mode {mode!r}")


def max_pixels() -> int:
    """The most pixels a decoded frame may have: ``IRSR_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{ENV_MAX_PIXELS}={text!r}: expected a positive number of pixels")
    return value


def _open_capped(path: Path, error: type[DataError]) -> Image.Image:
    """``PIL.Image.open`` (the header only) with the pixel cap applied before anything is decoded; every failure
    is ``error`` naming the file (a decompression bomb is a clear error, never PIL's own exception)."""
    try:
        if path.stat().st_size == 0:
            raise error(f"{path}: empty file (0 bytes)")
        img = Image.open(path)
        width, height = img.size
        if width * height > max_pixels():
            img.close()
            raise error(
                f"{path}: {width}x{height} is {width * height / 1e6:.1f} million pixels, over the limit of "
                f"{max_pixels() / 1e6:g} million per frame (raise it with {ENV_MAX_PIXELS})"
            )
        return img
    except DataError:
        raise
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except Image.DecompressionBombError as exc:  # PIL's own cap (2x MAX_IMAGE_PIXELS) refused it at the header
        raise error(f"{path}: {exc}; over the limit of {max_pixels() / 1e6:g} million pixels per frame") from None
    except Exception as exc:
        if isinstance(exc, UnidentifiedImageError) or isinstance(exc.__context__, UnidentifiedImageError):
            raise error(f"{path}: not an image PIL can identify (wrong extension or corrupt header)") from None
        raise error(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None


def image_size(path: str | os.PathLike, error: type[DataError] = ImageReadError) -> tuple[int, int]:
    """(width, height) from the header, within the pixel cap; failures are ``error`` naming the file."""
    with _open_capped(Path(path), error) as img:
        return img.size


@contextlib.contextmanager
def open_image(path: Path, error: type[DataError] = ImageReadError) -> Iterator[Image.Image]:
    """``PIL.Image.open`` + ``load`` where every failure is ``error`` naming the file.

    Decoders raise many types (OSError, ValueError, SyntaxError; plugins registered lazily by other
    packages, e.g. ultralytics' HEIF hook, raise ImportError), so everything is caught here, once.
    """
    img = _open_capped(Path(path), error)
    try:
        img.load()
    except Exception as exc:
        img.close()
        raise error(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None
    with img:
        yield img


def read_image(path: str | os.PathLike, channels: int | str = "auto", high_bit_rule: HighBitRule = "agc") -> np.ndarray:
    """Read ``path`` as float32 (H, W, C) in [0, 1]; see the module docstring for the rules."""
    path = Path(path)
    with open_image(path) as img:
        try:
            arr = _to_float(img, high_bit_rule, path)
        except (OSError, ValueError) as exc:
            raise ImageReadError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageReadError(f"{path}: image has no pixels ({arr.shape[1]}x{arr.shape[0]})")
    return _select_channels(arr, channels, path)


def _select_channels(arr: np.ndarray, channels: int | str, path: Path) -> np.ndarray:
    if channels == "auto":
        if arr.shape[2] == 3 and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            return arr[..., :1]
        return arr
    if channels == 1:
        return arr.mean(axis=2, keepdims=True) if arr.shape[2] == 3 else arr
    if channels == 3:
        return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr
    raise ImageReadError(f"{path}: channels must be 'auto', 1 or 3, got {channels!r}")


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Quantise float [0,1] to uint8 with rounding, as an 8-bit PNG stores it."""
    return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)


def on_png_grid(arr: np.ndarray) -> np.ndarray:
    """``arr`` (float in [0, 1]) exactly as it reads back after ``write_png``: the one grid every scored image is on.

    SR outputs are stored as 8-bit PNG, so a reference with finer steps (a 16-bit or float frame) is put on the
    same grid before a metric compares them; otherwise even the reference itself scores below "identical".
    8-bit data is unchanged."""
    return to_uint8(arr).astype(np.float32) / 255.0


def _png_data(arr: np.ndarray) -> np.ndarray:
    return arr if arr.dtype == np.uint8 else to_uint8(arr)


def stored_image(arr: np.ndarray, channels: int | str = "auto") -> np.ndarray:
    """``read_image(path, channels)`` of a file ``write_png(path, arr)`` wrote, without the file: the SR image is
    scored from memory while its PNG is written in the background, and equals what a rerun reads from the cache."""
    return _select_channels(_png_data(arr).astype(np.float32) / 255.0, channels, Path("<SR output in memory>"))


def write_png(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write (H, W, C) float in [0, 1] (or uint8 already on the grid, e.g. ``to_uint8``'s) as an 8-bit PNG (L or
    RGB), atomically."""
    data = _png_data(arr)
    image = Image.fromarray(data[..., 0] if data.shape[2] == 1 else data, mode="L" if data.shape[2] == 1 else "RGB")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
