"""Weights are read only through sr.checkpoint: the metrics built that way equal pyiqa's own; trusted
conversions check the sha256 before unpickling; ``sr.weights verify`` is not fooled by a forged memo."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
import torch
from poison import poison

from sr import weights as W
from sr.checkpoint import CheckpointError, load_checkpoint, load_trusted_pickle

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sr", "downstream", "benchmarks", "reports")
LOADER = REPO / "sr" / "checkpoint.py"
#: calls that unpickle (or run TorchScript): allowed in the loader module only
UNSAFE = {
    ("torch", "load"),
    ("pickle", "load"),
    ("pickle", "loads"),
    ("jit", "load"),
    ("hub", "load"),
    ("hub", "load_state_dict_from_url"),
    ("model_zoo", "load_url"),
    ("dill", "load"),
    ("joblib", "load"),
}


def _production_files():
    for package in PACKAGES:
        yield from (REPO / package).rglob("*.py")


def test_no_unpickling_call_outside_the_loader():
    found = []
    for path in _production_files():
        if path == LOADER:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                owner = func.value if isinstance(func, ast.Attribute) else None
                owner_name = (owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")) or ""
                if (owner_name, name) in UNSAFE or name in ("load_state_dict_from_url", "load_url"):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {owner_name}.{name}")
            if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "dill", "unittest.mock", "unittest"):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} from {node.module} import ...")
            if isinstance(node, ast.Import) and any(a.name in ("unittest.mock", "dill") for a in node.names):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} import {node.names[0].name}")
    assert found == []


def test_the_check_itself_finds_a_torch_load(tmp_path):
    """The AST check above would notice the call forms it is meant to forbid."""
    source = "import torch\nx = torch.load('f', weights_only=False)\ny = torch.jit.load('g')\n"
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)]
    kinds = {
        (c.func.value.attr if isinstance(c.func.value, ast.Attribute) else c.func.value.id, c.func.attr) for c in calls
    }
    assert kinds <= UNSAFE and len(kinds) == 2


# ----- the metrics built from safely loaded weights equal pyiqa's own loading (benign files) ------------------


def _images(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)


def test_lpips_equals_pyiqa(tmp_path, monkeypatch):
    import pyiqa
    from torchvision.models import alexnet

    from downstream.metrics import QualityMetric

    torch.manual_seed(1)
    alex = W.path_of("torchvision_alexnet", tmp_path)
    alex.parent.mkdir(parents=True)
    torch.save(alexnet(weights=None).state_dict(), alex)
    lin = W.path_of("pyiqa_lpips_alex", tmp_path)
    lin.parent.mkdir(parents=True)
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 192, 384, 256, 256))}, lin)
    ours = QualityMetric("lpips", weights_dir=tmp_path)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))  # pyiqa's own loading, benign
    theirs = pyiqa.create_metric("lpips", device="cpu", net="alex", version="0.1", pretrained_model_path=str(lin))
    a, b = _images()
    expected = theirs(a, b).reshape(-1)
    assert torch.allclose(ours(a, b), expected, rtol=1e-5, atol=1e-6)
    assert expected.abs().min() > 0


def test_musiq_equals_pyiqa(tmp_path):
    import pyiqa

    from downstream.metrics import QualityMetric

    torch.manual_seed(2)
    net = pyiqa.create_metric("musiq", device="cpu", pretrained=False).net
    path = W.path_of("pyiqa_musiq_koniq", tmp_path)
    path.parent.mkdir(parents=True)
    torch.save(
        {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in net.state_dict().items()}, path
    )
    ours = QualityMetric("musiq", weights_dir=tmp_path)
    theirs = pyiqa.create_metric("musiq", device="cpu", pretrained_model_path=str(path))
    a, _ = _images()
    assert torch.allclose(ours(a), theirs(a).reshape(-1), rtol=1e-5, atol=1e-5)


def test_clipiqa_reads_its_weights_from_the_safetensors_file(tmp_path):
    """CLIP RN50 with seeded random weights, shifted: the CLIP that pyiqa's CLIP-IQA runs holds the file's
    tensors, and its scores differ from the unshifted random network's."""
    import pyiqa.archs.clip_model as clip_model
    from safetensors.torch import save_file

    from downstream.metrics import _CLIP_RN50, QualityMetric

    torch.manual_seed(3)
    state = {
        k: (v + 0.05 if v.is_floating_point() else v).contiguous()
        for k, v in clip_model.CLIP(**_CLIP_RN50).state_dict().items()
    }
    path = W.path_of("clip_rn50_state", tmp_path)
    path.parent.mkdir(parents=True)
    save_file(state, str(path))
    ours = QualityMetric("clipiqa", weights_dir=tmp_path)
    loaded = ours.model.net.clip_model[0].state_dict()
    assert set(loaded) == set(state)
    # pyiqa's build_model keeps CLIP's layers in fp16 (as OpenAI's CLIP does): equal up to that rounding
    assert all(torch.allclose(loaded[k].float(), state[k].float(), rtol=1e-3, atol=1e-4) for k in state)
    a, _ = _images()
    assert not torch.allclose(ours(a), QualityMetric("clipiqa", random_weights=True)(a))


def test_clipiqa_without_the_converted_file_says_how_to_make_it(tmp_path):
    from downstream.metrics import QualityMetric
    from sr.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="python -m sr.weights convert clip_rn50"):
        QualityMetric("clipiqa", weights_dir=tmp_path)


# ----- trusted conversion: the sha256 is checked before anything is unpickled -------------------------------


def test_trusted_unpickle_needs_the_right_sha256(tmp_path):
    bad = tmp_path / "bad.pth"
    marker = tmp_path / "ran"
    poison(bad, marker)
    for sha in (None, "0" * 64):
        with pytest.raises(CheckpointError, match="refusing an unrestricted unpickle"):
            load_trusted_pickle(bad, sha)
    with pytest.raises(CheckpointError, match="the global 'posix.mkdir'"):
        load_checkpoint(bad)
    assert not marker.exists()


def test_convert_pickle_and_torchscript(tmp_path, capsys):
    from sr.weights.cli import main

    good = tmp_path / "good.pth"
    torch.save({"params": {"w": torch.arange(4.0)}, "step": 3}, good)
    assert main(["convert", str(good)]) == 2  # no sha256 stated: refused
    assert "no sha256" in capsys.readouterr().err
    assert main(["convert", str(good), "--sha256", W.file_sha256(good)]) == 0
    assert torch.equal(load_checkpoint(good.with_suffix(".safetensors"))["w"], torch.arange(4.0))
    scripted = tmp_path / "net.pt"
    net = torch.nn.Linear(3, 2)
    torch.jit.save(torch.jit.script(net), scripted)
    out = tmp_path / "net_state.safetensors"
    assert main(["convert", str(scripted), "--sha256", W.file_sha256(scripted), "--out", str(out)]) == 0
    state = load_checkpoint(out)
    assert torch.equal(state["weight"], net.weight.detach()) and torch.equal(state["bias"], net.bias.detach())


def test_yolo_trust_pickle_needs_the_registry_sha256(tmp_path):
    from downstream.detection.yolo import load_detector

    path = W.path_of("yolov5su_coco", tmp_path)
    marker = tmp_path / "ran"
    poison(path, marker)
    with pytest.raises(CheckpointError, match="sha256"):
        load_detector("yolov5su_coco", tmp_path, trust_pickle=True)
    assert not marker.exists()


# ----- verify: a forged sha256 memo does not make a replaced file 'ok' ---------------------------------------


def _dat_entry(tmp_path) -> tuple[Path, str]:
    path = W.path_of("dat_x4", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not the DAT weights")
    return path, W.entry("dat_x4").sha256


def test_verify_ignores_a_forged_memo(tmp_path, capsys):
    from sr.weights.cli import main

    path, registered = _dat_entry(tmp_path)
    memo = path.with_name(f".{path.name}.sha256.json")
    st = path.stat()
    # the forgery: the replaced file's size and mtime with the registry's hash
    memo.write_text(json.dumps({"key": {"size": st.st_size, "mtime_ns": st.st_mtime_ns}, "sha256": registered}))
    assert main(["--weights-dir", str(tmp_path), "verify", "dat_x4"]) == 1
    assert "mismatch" in capsys.readouterr().out
    # a forgery that copies every stat field fools the memo, never --full
    key = json.loads(memo.read_text())["key"]
    memo.write_text(json.dumps({"key": key, "sha256": registered}))
    assert main(["--weights-dir", str(tmp_path), "verify", "--full", "dat_x4"]) == 1
    assert "mismatch" in capsys.readouterr().out
    # replacing the file (new inode, same size and mtime) invalidates a memo written for the old one
    memo.write_text(json.dumps({"key": key, "sha256": registered}))
    replacement = path.with_name("new")
    replacement.write_bytes(b"not the DAT weights")
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)
    assert W.sha256_of(path) == W.file_sha256(path) != registered
