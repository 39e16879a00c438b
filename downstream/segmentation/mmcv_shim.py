"""Let mmsegmentation import on mmcv-lite (no compiled ``mmcv._ext``).

mmseg imports ``mmcv.ops`` eagerly (``mmseg.utils.mask_classification`` -> ``mmcv.ops.point_sample``),
and every ``mmcv.ops`` module calls ``ext_loader.load_ext('_ext', [names])``, which imports
``mmcv._ext`` and checks ``hasattr`` for each name. SegFormer (MiT + all-MLP head) never calls a
compiled op, so :func:`install` registers a stand-in ``mmcv._ext`` module whose attributes exist
but raise a clear error if anything ever calls them. When a real compiled mmcv is installed the
shim does nothing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

_NAME = "mmcv._ext"


class CompiledOpUnavailable(RuntimeError):
    """A compiled mmcv op was called, but only mmcv-lite is installed."""


class _MissingExt(types.ModuleType):
    """Module stand-in: every attribute is a function that raises when called."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)

        def unavailable(*args, **kwargs):
            raise CompiledOpUnavailable(
                f"mmcv compiled op {attr!r} was called, but only mmcv-lite (no mmcv._ext) is installed. "
                "SegFormer does not need compiled ops; a model that does needs the full mmcv build."
            )

        unavailable.__name__ = attr
        return unavailable


def _real_ext_available() -> bool:
    try:
        return importlib.util.find_spec(_NAME) is not None
    except (ImportError, ValueError):
        return False


def install() -> bool:
    """Register the stand-in ``mmcv._ext`` unless a real one exists; True when the shim is active."""
    existing = sys.modules.get(_NAME)
    if existing is not None:
        return isinstance(existing, _MissingExt)
    if _real_ext_available():
        return False
    module = _MissingExt(_NAME, "stand-in for mmcv's compiled ops (mmcv-lite); calling any op raises")
    module.__spec__ = importlib.machinery.ModuleSpec(_NAME, loader=None)
    module.__file__ = None
    sys.modules[_NAME] = module
    return True


#: libraries mmengine imports at import time only to register optional extras the project never uses (the
#: bitsandbytes optimizers: its import costs seconds, and it tries to fetch kernels); hidden while mmseg loads
_SKIPPED_AT_IMPORT = ("bitsandbytes",)


def import_mmseg():
    """Install the shim, import mmseg's models and make 'mmseg' the default registry scope."""
    install()
    hidden = [name for name in _SKIPPED_AT_IMPORT if name not in sys.modules]
    sys.modules.update(dict.fromkeys(hidden))  # None: "import bitsandbytes" raises ImportError, which mmengine skips
    try:
        import mmseg.models  # noqa: F401  (registers MixVisionTransformer, SegformerHead, EncoderDecoder)
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    from mmengine.registry import init_default_scope

    init_default_scope("mmseg")
    import mmseg

    return mmseg
