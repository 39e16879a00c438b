"""Untrusted checkpoints. A pickle that would run code is refused and the code does not run;
every weights loader goes through the one safe function (sr/checkpoint.py); safetensors is accepted."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sr
from sr.checkpoint import CheckpointError, load_checkpoint, load_into

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sr", "downstream", "benchmarks", "reports")
SAFE_MODULE = "sr/checkpoint.py"
UNSAFE_CALLS = {
    ("torch", "load"),
    ("pickle", "load"),
    ("pickle", "loads"),
    ("dill", "load"),
    ("torch.jit", "load"),
    ("joblib", "load"),
}


class _Evil:
    """Unpickling this runs ``open(marker, 'w')``: the marker file proves code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _malicious_checkpoint(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Evil(marker)}, path)
    return path


def _calls(source_file: Path) -> list[tuple[int, str, ast.Call]]:
    tree = ast.parse(source_file.read_text(), filename=str(source_file))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if (owner, node.func.attr) in UNSAFE_CALLS:
                found.append((node.lineno, f"{owner}.{node.func.attr}", node))
    return found


def _weights_only(call: ast.Call):
    for kw in call.keywords:
        if kw.arg == "weights_only":
            return kw.value.value if isinstance(kw.value, ast.Constant) else "dynamic"
    return None


def _scan() -> list[tuple[str, int, str, object]]:
    hits = []
    for package in PACKAGES:
        for file in sorted((REPO / package).rglob("*.py")):
            rel = file.relative_to(REPO).as_posix()
            for lineno, name, call in _calls(file):
                hits.append((rel, lineno, name, _weights_only(call)))
    return hits


def test_the_malicious_payload_is_live():
    """Control: the payload really runs code when unpickled unsafely (so the refusal tests mean something)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        marker = Path(d) / "ran"
        ckpt = _malicious_checkpoint(Path(d) / "evil.pth", marker)
        # unsafe load in a separate interpreter, never in the test process
        subprocess.run(
            [sys.executable, "-c", f"import torch; torch.load({str(ckpt)!r}, weights_only=False)"],
            check=False,
            capture_output=True,
            timeout=120,
        )
        assert marker.exists()


def test_safe_loader_refuses_code_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    ckpt = _malicious_checkpoint(tmp_path / "evil.pth", marker)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(ckpt)
    message = str(info.value)
    assert "refusing to load" in message and str(ckpt) in message
    assert not marker.exists()


def test_public_method_path_refuses_a_malicious_official_checkpoint(tmp_path):
    """sr.load_method('esrgan') with its registry file replaced by a code-running pickle."""
    pytest.importorskip("spandrel")
    from sr.weights import entry

    marker = tmp_path / "ran"
    weights = tmp_path / "weights"
    _malicious_checkpoint(weights / entry("esrgan_rrdb_x4").file, marker)
    with pytest.raises(CheckpointError, match="refusing to load"):
        sr.load_method("esrgan", weights_dir=str(weights))
    assert not marker.exists()


def test_runner_turns_a_malicious_checkpoint_into_an_unavailable_row(tmp_path):
    pytest.importorskip("spandrel")
    import pandas as pd

    from benchmarks.run import main as run_main
    from sr.weights import entry

    marker = tmp_path / "ran"
    weights = tmp_path / "weights"
    _malicious_checkpoint(weights / entry("esrgan_rrdb_x4").file, marker)
    out = tmp_path / "run"
    assert (
        run_main(
            [
                "--methods",
                "esrgan",
                "--weights-dir",
                str(weights),
                "--limit",
                "1",
                "--tasks",
                "quality",
                "--metrics",
                "psnr",
                "--quiet",
                "--no-report",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    df = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    row = df[df.metric == "unavailable"]
    assert len(row) == 1 and "refusing to load" in row.error.iloc[0]
    assert not marker.exists()


def test_safetensors_and_plain_state_dicts_are_accepted(tmp_path):
    from safetensors.torch import save_file

    net = torch.nn.Conv2d(3, 4, 3)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save({"params_ema": state}, tmp_path / "w.pth")
    for file in ("w.safetensors", "w.pth"):
        other = torch.nn.Conv2d(3, 4, 3)
        load_into(other, tmp_path / file, "conv")
        for k, v in other.state_dict().items():
            assert torch.equal(v, state[k])


def test_pickle_protocol_garbage_is_a_clear_error(tmp_path):
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(pickle.dumps("not a checkpoint")[:5])
    with pytest.raises(CheckpointError, match="garbage.pth"):
        load_checkpoint(bad)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.safetensors"):
        load_checkpoint(tmp_path / "empty.safetensors")


def test_no_source_file_unpickles_without_weights_only():
    """Hard line: no torch.load / pickle.load anywhere that could execute a pickle by default.

    The one deliberate unrestricted load is ``sr.checkpoint.load_trusted_pickle``, reached only through
    the explicit user opt-in ``--trust-pickle`` of `python -m downstream.detection.yolo convert`."""
    bad = [
        f"{f}:{line}: {name}(weights_only={wo!r})"
        for f, line, name, wo in _scan()
        if f != SAFE_MODULE and wo is not True
    ]
    assert not bad, "unsafe unpickling outside sr/checkpoint.py:\n" + "\n".join(bad)


def test_every_loader_goes_through_the_one_safe_function():
    others = [f"{f}:{line}: {name}(weights_only={wo!r})" for f, line, name, wo in _scan() if f != SAFE_MODULE]
    assert not others, "loaders that bypass sr.checkpoint.load_checkpoint:\n" + "\n".join(others)
