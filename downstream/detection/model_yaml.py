"""The one check of a detector's model description (the ultralytics model yaml a weights file, a task or a training
config carries) before anything is built from it.

ultralytics' ``parse_model`` resolves each layer's type by name in the globals of ``ultralytics.nn.tasks`` (where
``torch_load``, downloaders and installers also live), ``eval`` s the ``activation`` string and calls the layer
with the file's arguments. A description is data: here every layer type must be one of :data:`LAYERS`, an explicit
allowlist of ultralytics' detection network module *classes* (and a few ``torch.nn`` ones), every argument a
number, a boolean, ``None``, one of the names in :data:`ARG_NAMES` or a list of numbers; sizes are bounded so a
description cannot ask for gigabytes. Anything else is a :class:`~sr.errors.ConfigError` naming the source.
"""

from __future__ import annotations

import numbers
from typing import Any

from sr.errors import ConfigError

#: layer types a detection model may use: ultralytics.nn.modules classes (never functions, loaders or TorchVision,
#: which downloads) and torch.nn layers, as the model yamls shipped with ultralytics spell them
LAYERS = frozenset(
    {
        "A2C2f",
        "AConv",
        "ADown",
        "Bottleneck",
        "BottleneckCSP",
        "C1",
        "C2",
        "C2PSA",
        "C2f",
        "C2fCIB",
        "C2fPSA",
        "C3",
        "C3Ghost",
        "C3k2",
        "C3x",
        "CBFuse",
        "CBLinear",
        "Concat",
        "Conv",
        "DWConv",
        "Detect",
        "ELAN1",
        "Focus",
        "GhostBottleneck",
        "GhostConv",
        "PSA",
        "RepC3",
        "RepNCSPELAN4",
        "SCDown",
        "SPP",
        "SPPELAN",
        "SPPF",
        "v10Detect",
        "nn.ConvTranspose2d",
        "nn.Identity",
        "nn.MaxPool2d",
        "nn.Upsample",
        "nn.ZeroPad2d",
    }
)
#: the names parse_model substitutes in a layer's arguments
ARG_NAMES = frozenset({"nc", "None", "nearest"})
#: activation strings parse_model may eval (the only ones the shipped yamls use, plus SiLU, the default)
ACTIVATIONS = frozenset({"nn.SiLU()", "torch.nn.SiLU()", "nn.ReLU()", "torch.nn.ReLU()"})
_TOP_KEYS = frozenset(
    {"nc", "scales", "scale", "depth_multiple", "width_multiple", "activation", "backbone", "head", "ch", "channels"}
    | {"reg_max", "end2end", "yaml_file", "kpt_shape"}
)
MAX_LAYERS = 512
MAX_NUMBER = 8192  # channels, repeats, kernel sizes, class counts: far above any YOLO, far below gigabytes
MAX_MULTIPLE = 4.0


def _number(value: Any, where: str, source: str, *, integer: bool = False, limit: float = MAX_NUMBER) -> None:
    ok = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool)
    if not ok or not -limit <= value <= limit:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{source}: model description {where} = {value!r} must be {kind} in [-{limit}, {limit}]")


def _argument(value: Any, where: str, source: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if value not in ARG_NAMES:
            raise ConfigError(
                f"{source}: model description {where} = {value!r} is not an allowed argument "
                f"(numbers, booleans, null, lists of numbers, or one of {', '.join(sorted(ARG_NAMES))})"
            )
        return
    if isinstance(value, list):
        if len(value) > 64:
            raise ConfigError(f"{source}: model description {where} is a list of {len(value)} items (at most 64)")
        for i, item in enumerate(value):
            _number(item, f"{where}[{i}]", source)
        return
    _number(value, where, source)


def _check_top(description: dict[str, Any], source: str) -> None:
    """The keys and scalars above the layer lists: known keys, an allowed activation, bounded numbers, scales."""
    unknown = sorted(str(k) for k in description if k not in _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: model description keys {unknown} are not allowed")
    act = description.get("activation")
    if act is not None and act not in ACTIVATIONS:
        raise ConfigError(
            f"{source}: model description activation {act!r} is not allowed (one of {', '.join(sorted(ACTIVATIONS))})"
        )
    _number(description.get("nc", 1), "nc", source, integer=True)
    for key in ("depth_multiple", "width_multiple"):
        if key in description:
            _number(description[key], key, source, limit=MAX_MULTIPLE)
    for key in ("reg_max", "ch", "channels"):
        if key in description:
            _number(description[key], key, source, integer=True, limit=1024)
    if "end2end" in description and not isinstance(description["end2end"], bool):
        raise ConfigError(f"{source}: model description end2end = {description['end2end']!r} must be true or false")
    scales = description.get("scales") or {}
    if not isinstance(scales, dict):
        raise ConfigError(f"{source}: model description scales must be a mapping of name: [depth, width, channels]")
    for name, triple in scales.items():
        if not isinstance(triple, list) or len(triple) != 3:
            raise ConfigError(f"{source}: model description scales.{name} must be [depth, width, max channels]")
        _number(triple[0], f"scales.{name}[0]", source, limit=MAX_MULTIPLE)
        _number(triple[1], f"scales.{name}[1]", source, limit=MAX_MULTIPLE)
        _number(triple[2], f"scales.{name}[2]", source, integer=True)
    if "scale" in description and description["scale"] not in scales:
        raise ConfigError(f"{source}: model description scale {description['scale']!r} is not one of its scales")


def _check_layer(where: str, layer: Any, source: str) -> None:
    """One ``[from, repeats, module, args]`` entry: bounded indices, an allowed layer class, allowed arguments."""
    if not isinstance(layer, list) or len(layer) != 4:
        raise ConfigError(f"{source}: model description {where} must be [from, repeats, module, args]")
    frm, repeats, module, args = layer
    for i, f in enumerate(frm if isinstance(frm, list) else [frm]):
        _number(f, f"{where} from[{i}]", source, integer=True, limit=MAX_LAYERS)
    _number(repeats, f"{where} repeats", source, integer=True, limit=64)
    if not isinstance(module, str) or module not in LAYERS:
        raise ConfigError(
            f"{source}: model description {where} names the layer type {module!r}, which is not an allowed "
            f"network module (one of {', '.join(sorted(LAYERS))})"
        )
    if not isinstance(args, list) or len(args) > 16:
        raise ConfigError(f"{source}: model description {where} args must be a list of at most 16 values")
    for i, arg in enumerate(args):
        _argument(arg, f"{where} args[{i}]", source)


def check_model_description(description: Any, source: str) -> dict[str, Any]:
    """``description`` (a model yaml dict) if every layer and argument is allowed; a ConfigError naming ``source``
    (the file or option it came from) otherwise. Returns a copy without ``yaml_file`` (a path, not a layer)."""
    if not isinstance(description, dict):
        raise ConfigError(f"{source}: the model description is a {type(description).__name__}, not a mapping")
    _check_top(description, source)
    layers = []
    for part in ("backbone", "head"):
        value = description.get(part)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: model description {part} must be a list of layers")
        layers += [(f"{part}[{i}]", layer) for i, layer in enumerate(value)]
    if not layers or len(layers) > MAX_LAYERS:
        raise ConfigError(f"{source}: model description has {len(layers)} layers (1..{MAX_LAYERS})")
    for where, layer in layers:
        _check_layer(where, layer, source)
    return {k: v for k, v in description.items() if k != "yaml_file"}
