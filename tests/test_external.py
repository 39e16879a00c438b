"""The external-command adapter, end to end with a tiny script standing in for another repository."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import sr
from sr.errors import UserError
from sr.methods.external import ExternalCommand, ExternalMethodError, ExternalSetupError, fill, fill_config

SCRIPT = textwrap.dedent("""
    import argparse, os, sys, time
    from PIL import Image
    p = argparse.ArgumentParser()
    p.add_argument("--input"); p.add_argument("--output"); p.add_argument("--scale", type=int)
    p.add_argument("--mode", default="ok"); p.add_argument("--suffix", default="")
    a = p.parse_args()
    print("fake-sr starting", a.mode, flush=True)
    if a.mode == "sleep":
        time.sleep(60)
    if a.mode == "fail":
        print("boom: CUDA out of memory", file=sys.stderr)
        sys.exit(3)
    for name in sorted(os.listdir(a.input)):
        stem = os.path.splitext(name)[0]
        if a.mode == "missing" and stem.endswith("1"):
            continue
        img = Image.open(os.path.join(a.input, name))
        s = a.scale if a.mode != "wrongsize" else a.scale - 1
        img.resize((img.width * s, img.height * s), Image.NEAREST).save(
            os.path.join(a.output, stem + a.suffix + ".png"))
    print("done", flush=True)
""")


@pytest.fixture
def fake_repo(tmp_path) -> Path:
    repo = tmp_path / "fake_repo"
    repo.mkdir()
    (repo / "fake_sr.py").write_text(SCRIPT)
    return repo


def make(repo: Path, tmp_path: Path, mode: str = "ok", **options) -> ExternalCommand:
    options = {
        "command": f"{{python}} fake_sr.py --input {{input}} --output {{output}} --scale {{scale}} "
        f"--mode {mode} --suffix _SR",
        "repo_dir": str(repo),
        "python": sys.executable,
        "output_name": "{id}_SR.png",
        "work_dir": str(tmp_path / "work"),
        "timeout": 30,
        **options,
    }
    return ExternalCommand(name="fake", scale=4, **options)


def test_fill_replaces_only_known_placeholders():
    assert fill("a {x} {} {y} '{}x4'", {"x": 1}) == "a 1 {} {y} '{}x4'"


def test_runs_the_script_end_to_end(fake_repo, tmp_path):
    method = make(fake_repo, tmp_path)
    x = torch.rand(2, 1, 9, 11)
    y = method.upscale(x)
    assert y.shape == (2, 1, 36, 44)
    # nearest x4 of the 8-bit input, averaged back to one channel
    expected = torch.round(x * 255).repeat_interleave(4, 2).repeat_interleave(4, 3) / 255
    assert torch.allclose(y, expected, atol=1e-6)
    y3 = method.upscale(torch.rand(1, 3, 5, 6))
    assert y3.shape == (1, 3, 20, 24)
    assert not any((tmp_path / "work" / "fake").iterdir())  # run folders are removed after success


def test_missing_output_is_reported_with_file_and_log(fake_repo, tmp_path):
    method = make(fake_repo, tmp_path, mode="missing")
    with pytest.raises(ExternalMethodError) as info:
        method.upscale(torch.rand(2, 3, 8, 8))
    message = str(info.value)
    assert "did not write the expected output" in message and "0001_SR.png" in message
    assert "0000_SR.png" in message  # what the folder does hold
    assert "fake_sr.py" in message and "command.log" in message
    assert method.last_log.is_file() and "fake-sr starting" in method.last_log.read_text()


def test_wrong_size_is_reported(fake_repo, tmp_path):
    method = make(fake_repo, tmp_path, mode="wrongsize")
    with pytest.raises(ExternalMethodError, match=r"0000_SR.png is 24x24 \(WxH\), expected 32x32"):
        method.upscale(torch.rand(1, 1, 8, 8))


def test_timeout_is_reported_and_the_process_killed(fake_repo, tmp_path):
    method = make(fake_repo, tmp_path, mode="sleep", timeout=1.5)
    with pytest.raises(ExternalMethodError, match=r"timed out after 1.5 s and was killed") as info:
        method.upscale(torch.rand(1, 1, 8, 8))
    assert "fake-sr starting sleep" in str(info.value)  # the log tail


def test_failing_command_shows_status_and_log_tail(fake_repo, tmp_path):
    method = make(fake_repo, tmp_path, mode="fail")
    with pytest.raises(ExternalMethodError, match=r"exited with status 3(.|\n)*CUDA out of memory"):
        method.upscale(torch.rand(1, 1, 8, 8))


def test_config_template_and_placeholder_gt(fake_repo, tmp_path):
    template = tmp_path / "tmpl.yml"
    template.write_text("lq: {input}\ngt: {gt}\nscale: {scale}\nname: run_{run}\ntmpl: '{}x4'\n")
    script = fake_repo / "cfg_sr.py"
    script.write_text(
        textwrap.dedent("""
        import sys, os, yaml
        from PIL import Image
        cfg = yaml.safe_load(open(sys.argv[1]))
        assert cfg["tmpl"] == "{}x4"
        out = sys.argv[2]
        for name in os.listdir(cfg["lq"]):
            gt = Image.open(os.path.join(cfg["gt"], name))
            gt.save(os.path.join(out, name))
    """)
    )
    method = ExternalCommand(
        name="cfg",
        scale=4,
        command="{python} cfg_sr.py {config} {output}",
        repo_dir=str(fake_repo),
        python=sys.executable,
        config_template=str(template),
        write_gt=True,
        work_dir=str(tmp_path / "work"),
    )
    y = method.upscale(torch.rand(1, 1, 6, 7))
    assert y.shape == (1, 1, 24, 28)


def test_prerequisites_are_checked_at_construction(tmp_path, monkeypatch):
    monkeypatch.delenv("IRSR_FAKE_DIR", raising=False)
    with pytest.raises(ExternalSetupError, match="set IRSR_FAKE_DIR to a checkout of https://example.org/fake"):
        ExternalCommand(
            name="f", scale=4, command="{python} x.py", repo_env="IRSR_FAKE_DIR", repo_url="https://example.org/fake"
        )
    monkeypatch.setenv("IRSR_FAKE_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ExternalSetupError, match="nowhere .*does not exist"):
        ExternalCommand(name="f", scale=4, command="{python} x.py", repo_env="IRSR_FAKE_DIR")
    with pytest.raises(ExternalSetupError, match="python interpreter '/no/such/python'"):
        ExternalCommand(name="f", scale=4, command="{python} x.py", repo_dir=str(tmp_path), python="/no/such/python")
    with pytest.raises(ExternalSetupError, match=r"missing: is .* the repository's checkout"):
        ExternalCommand(name="f", scale=4, command="x", repo_dir=str(tmp_path), repo_check=["test.py"])


@pytest.mark.parametrize(
    "name,env,weights_file",
    [("corple", "IRSR_CORPLE_DIR", "Final_4x.pth"), ("bidiffsr", "IRSR_BIDIFFSR_DIR", "BI_DiffSR_x4.pth")],
)
def test_shipped_external_methods_explain_what_is_missing(name, env, weights_file, monkeypatch):
    monkeypatch.delenv(env, raising=False)
    with pytest.raises(UserError) as info:
        sr.load_method(name)
    message = str(info.value)
    assert f"set {env} to a checkout of https://github.com/" in message
    assert weights_file in message and "drive.google.com" in message
    assert "docs/external_methods.md" in message


def test_shipped_config_templates_fill_to_valid_yaml(tmp_path):
    import yaml

    from sr.config import CONFIG_DIR

    for name in ("corple_test_x4.yml", "bidiffsr_test_x4.yml"):
        text = (CONFIG_DIR / "external" / name).read_text()
        values = {
            "input": tmp_path / "in",
            "gt": tmp_path / "gt",
            "scale": 4,
            "num_gpu": 1,
            "run": "r1",
            "weights": tmp_path / "w.pth",
        }
        cfg = yaml.safe_load(fill_config(text, values))
        assert cfg["name"] == "irsr_r1" and cfg["datasets"]["test_1"]["dataroot_lq"] == str(tmp_path / "in")
        assert cfg["path"]["pretrain_network_g"] == str(tmp_path / "w.pth")
        assert cfg["datasets"]["test_1"]["filename_tmpl"] == "{}"
        assert np.isscalar(cfg["scale"]) and "metrics" not in cfg["val"]


def test_a_value_cannot_inject_yaml_keys(tmp_path):
    """A weights directory whose name holds a newline and ``key: value`` stays one string value."""
    import yaml

    from sr.config import CONFIG_DIR

    text = (CONFIG_DIR / "external" / "corple_test_x4.yml").read_text()
    for weights in ("/w\n  injected_key: pwned", "/w\ninjected_key: pwned\npath: {}\n'\"# x"):
        values = {
            "input": tmp_path / "in",
            "gt": tmp_path / "gt",
            "scale": 4,
            "num_gpu": 1,
            "run": "r1",
            "weights": weights,
        }
        cfg = yaml.safe_load(fill_config(text, values))
        assert cfg["path"]["pretrain_network_g"] == weights
        assert "injected_key" not in cfg["path"] and "injected_key" not in cfg
        assert cfg["path"]["strict_load_g"] is True and cfg["scale"] == 4 and cfg["name"] == "irsr_r1"
    # the text fill this replaced lets the key in
    values["weights"] = "/w\n  injected_key: pwned"
    assert "injected_key" in yaml.safe_load(fill(text, values))["path"]
