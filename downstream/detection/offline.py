"""Make ultralytics run offline: no network access, no downloads, no telemetry, no writes to ``~/.config``.

Call :func:`ultralytics_offline` (it returns the imported ``ultralytics`` package) instead of importing ultralytics
directly. It must run before the first ``import ultralytics`` of the process, because ultralytics reads its
environment at import time:

* ``YOLO_OFFLINE=1``: ``ultralytics.utils.ONLINE`` is False, so no DNS probe, no hub events, no pip auto-install;
* ``YOLO_CONFIG_DIR=<cache>/ultralytics`` (``<cache>`` = ``$IRSR_CACHE_DIR`` or ``~/.cache/irsr``): a private
  settings file, so a user's own ultralytics settings (``datasets_dir``, ``runs_dir``, ``sync``) never leak in and
  ours never leak out;
* a TrueType font copied there as ``Arial.ttf`` and ``Arial.Unicode.ttf`` (from matplotlib's bundled DejaVuSans,
  or any system TTF): ultralytics' ``check_font`` downloads Arial otherwise whenever it draws a label.

Ultralytics still has code paths that fetch files when something is missing locally (``attempt_download_asset``
for ``*.pt`` names, ``check_font``'s URL probe, ``check_det_dataset``'s ``download:`` key, the AMP check that
downloads ``yolo26n.pt`` on CUDA). :func:`ultralytics_offline` replaces those entry points with guards: a local
file is still returned, anything that would go to the network raises :class:`DownloadAttempted` and is recorded
in :data:`ATTEMPTS` (the tests assert it stays empty). The AMP check is replaced by "AMP works on CUDA": it needs
yolo26n.pt; set ``amp: false`` in a training config for a GPU whose fp16 is broken.

If ultralytics was already imported by someone else, the module-level flags are forced to the same values, the
guards are installed and a warning says that the settings directory may be the user's.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from sr.errors import UserError
from sr.runtime import cache_dir

log = logging.getLogger(__name__)

ATTEMPTS: list[str] = []  # every download ultralytics tried while the guards were installed
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
_INSTALLED = False


class DownloadAttempted(UserError):
    """Ultralytics tried to fetch something from the network; the harness never downloads."""


def yolo_config_dir() -> Path:
    return cache_dir() / "ultralytics"


def find_font() -> Path:
    """A TrueType font on this machine: matplotlib's DejaVuSans first, then common system fonts."""
    candidates = []
    try:
        import matplotlib

        candidates.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
    except ImportError:
        pass
    candidates += [
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
        Path("/Library/Fonts/Arial.ttf"),
        Path("C:/Windows/Fonts/arial.ttf"),
    ]
    for path in candidates:
        if path.is_file():
            return path
    for root in ("/usr/share/fonts", "/usr/local/share/fonts"):
        found = sorted(Path(root).rglob("*.ttf")) if Path(root).is_dir() else []
        if found:
            return found[0]
    raise UserError(
        "no TrueType font found (looked for matplotlib's DejaVuSans.ttf and /usr/share/fonts/**/*.ttf); "
        f"copy any .ttf to {yolo_config_dir() / 'Ultralytics' / 'Arial.ttf'}"
    )


def _install_font(config_dir: Path) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    missing = [name for name in FONT_NAMES if not (config_dir / name).is_file()]
    if missing:
        font = find_font()
        for name in missing:
            tmp = config_dir / f".{name}.{os.getpid()}.tmp"
            shutil.copyfile(font, tmp)
            os.replace(tmp, config_dir / name)


def _refuse(what: str):
    ATTEMPTS.append(what)
    raise DownloadAttempted(
        f"ultralytics tried to download {what}; this harness never downloads. Put the file in "
        "place yourself (weights: the weights directory, see configs/weights.yaml)."
    )


def _install_guards(ultralytics) -> None:
    import ultralytics.data.utils as data_utils
    import ultralytics.engine.trainer as trainer_mod
    import ultralytics.utils as uutils
    import ultralytics.utils.checks as checks
    import ultralytics.utils.downloads as downloads

    real_is_url = downloads.is_url

    def is_url(url, check: bool = False) -> bool:
        if check and real_is_url(url, check=False):
            ATTEMPTS.append(f"url probe {url}")
            return False  # "not reachable": callers fall back to their offline behaviour
        return real_is_url(url, check=False)

    def safe_download(url=None, file=None, dir=None, *args, **kwargs):
        _refuse(str(url or file))

    def download(url, *args, **kwargs):
        _refuse(str(url))

    def attempt_download_asset(file, *args, **kwargs) -> str:
        name = checks.check_yolov5u_filename(str(file).strip().replace("'", ""))
        if Path(name).exists():
            return name
        _refuse(f"asset {name!r} (not found locally)")

    def check_amp(model) -> bool:
        import torch

        device = next(model.parameters()).device
        return device.type == "cuda" and torch.cuda.is_available()

    downloads.is_url = is_url
    downloads.safe_download = safe_download
    downloads.download = download
    downloads.attempt_download_asset = attempt_download_asset
    data_utils.safe_download = safe_download
    data_utils.download = download
    trainer_mod.check_amp = check_amp
    checks.check_amp = check_amp
    uutils.ONLINE = False
    for mod_name in ("ultralytics.nn.autobackend", "ultralytics.utils.checks"):
        mod = sys.modules.get(mod_name)
        if mod is not None and hasattr(mod, "is_url"):
            mod.is_url = is_url
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("ultralytics") and getattr(mod, "ONLINE", None) is True:
            mod.ONLINE = False
    settings = uutils.SETTINGS
    if settings.get("sync", False):
        settings.update({"sync": False})


def ultralytics_offline():
    """Import ultralytics with the offline environment (see the module docstring) and return the package."""
    global _INSTALLED
    if _INSTALLED:
        return sys.modules["ultralytics"]
    already = "ultralytics" in sys.modules
    config_root = yolo_config_dir()
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "False")  # the runner has its own progress output
    if not already:
        os.environ["YOLO_CONFIG_DIR"] = str(config_root)
        _install_font(config_root / "Ultralytics")
    import ultralytics
    from ultralytics.utils import USER_CONFIG_DIR

    if already:
        log.warning(
            "ultralytics was imported before downstream.detection.offline; its settings directory is %s",
            USER_CONFIG_DIR,
        )
    _install_font(Path(USER_CONFIG_DIR))
    _install_guards(ultralytics)
    _INSTALLED = True
    return ultralytics
