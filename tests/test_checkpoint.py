"""sr.checkpoint: safe loading of every official checkpoint layout, clear errors otherwise."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sr.checkpoint import CheckpointError, extract_state_dict, load_checkpoint, load_into


class Tiny(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.norm = nn.BatchNorm2d(width)  # brings buffers (running stats, counter)


def _state(width: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    model = Tiny(width)
    with torch.no_grad():
        model.norm.running_mean.uniform_()
    return {k: v.clone() for k, v in model.state_dict().items()}


LAYOUTS = {
    "flat": lambda s: s,
    "state_dict": lambda s: {"state_dict": s, "iters_start": 10},
    "module": lambda s: {f"module.{k}": v for k, v in s.items()},
    "orig_mod": lambda s: {"state_dict": {f"_orig_mod.{k}": v for k, v in s.items()}},
    "basicsr": lambda s: {"params_ema": s, "params": {k: torch.zeros_like(v) for k, v in s.items()}},
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_official_layouts_load(tmp_path, layout):
    state = _state()
    path = tmp_path / f"{layout}.pth"
    torch.save(LAYOUTS[layout](state), path)
    model = load_into(Tiny(), path, "Tiny")
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_safetensors_loads(tmp_path):
    state = _state()
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    assert set(load_checkpoint(path)) == set(state)
    model = load_into(Tiny(), path, "Tiny")
    assert torch.equal(model.norm.running_mean, state["norm.running_mean"])


def test_load_into_accepts_a_loaded_object():
    state = _state()
    model = load_into(Tiny(), {"params_ema": state}, "Tiny")
    assert torch.equal(model.conv.weight, state["conv.weight"])


def test_mismatch_lists_keys_and_architecture(tmp_path):
    state = _state(width=8)  # shape mismatch everywhere
    state["extra.weight"] = torch.zeros(1)
    del state["conv.bias"]
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_into(Tiny(), path, "TinyArch")
    msg = str(err.value)
    assert "TinyArch" in msg and str(path) in msg
    assert "missing keys (1): conv.bias" in msg
    assert "unexpected keys (1): extra.weight" in msg
    assert "shape mismatches" in msg and "conv.weight (8, 3, 3, 3) vs expected (4, 3, 3, 3)" in msg


def test_long_key_lists_are_truncated():
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(30)])
    with pytest.raises(CheckpointError, match=r"missing keys \(60\): .* \.\.\. \(\+50 more\)"):
        load_into(model, {"x": torch.zeros(1)}, "Seq30")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="not found: .*nothing.pth"):
        load_checkpoint(tmp_path / "nothing.pth")


def test_extract_state_dict_prefixes():
    out = extract_state_dict({"module._orig_mod.a": torch.zeros(1), "module.b": torch.ones(1)})
    assert set(out) == {"a", "b"}


class _Exploit:
    """A pickle payload that would create a marker file if the pickle were executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {"w": _Exploit(marker)}}, f)
    evil_zip = tmp_path / "evil_zip.pth"
    torch.save({"w": _Exploit(marker)}, evil_zip)
    assert not marker.exists()  # creating the payload did not run it
    for candidate in (path, evil_zip):
        with pytest.raises(CheckpointError, match=f"refusing to load {candidate}"):
            load_checkpoint(candidate)
        with pytest.raises(CheckpointError):
            load_into(Tiny(), candidate, "Tiny")
    assert not marker.exists()
