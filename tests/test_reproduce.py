"""Training matches sampling, a finished run is a method, and ``python -m benchmarks.reproduce`` end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from test_train import tiny_config

from sr.errors import ConfigError
from sr.ownership import MANIFEST, read_manifest
from sr.train.config import TRAIN_CONFIG_DIR, load_config
from sr.train.run_method import check_sampling, sampling_mode
from sr.vocab import ENV_RUNS_DIR, FLAG_DEMO_STAND_IN, split_flags

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_difiisr_recipe_is_the_distillation_base_sampled_in_one_step():
    """difiisr_full (base of every ablation) and difiisr_demo train SinSR's one-step student (teacher ResShift v1 /
    the demo ResShift model) and are sampled in one step as their method YAMLs do; Algorithm 1 as printed is the
    ResShift loss sampled with the 15-step sampler."""
    for name, teacher, like in (("difiisr_full", "resshift_v1", "difiisr"), ("difiisr_demo", "resshift_demo", None)):
        cfg = load_config(name)
        assert cfg.objective["base"] == "sinsr" and cfg.objective["base_options"]["teacher"] == teacher
        assert sampling_mode(cfg) == "one_step"
        assert like is None or cfg.method["like"] == like
    alg1 = load_config("difiisr_full_alg1")
    assert alg1.objective["base"] == "resshift" and sampling_mode(alg1) == "stochastic"
    for path in sorted(TRAIN_CONFIG_DIR.glob("difiisr_*.yaml")):  # every ablation inherits a consistent sampler
        cfg = load_config(path)
        check_sampling(cfg)
        assert cfg.method is not None, path


def test_trainer_refuses_an_objective_its_method_does_not_sample(tmp_path, capsys):
    """A ResShift objective (random t) sampled in one step: one error line, exit 2, nothing trained. The same
    config with method.mismatch (a reason) is accepted; a one-step student sampled in 15 steps is refused too."""
    from sr.train.__main__ import main

    bad = tiny_config(tmp_path, "bad", method={"like": "difiisr_demo"})
    assert main(["--config", str(bad), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "'one_step'" in err[0] and "mismatch" in err[0]
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="trains a network sampled with steps_mode one_step"):
        check_sampling(
            load_config(
                tiny_config(
                    tmp_path,
                    "student",
                    objective={"kind": "difiisr", "base": "sinsr", "base_options": {"teacher": "resshift_demo"}},
                    method={"like": "difiisr_demo", "options": {"steps_mode": "ddim"}},
                )
            )
        )
    on_purpose = tiny_config(tmp_path, "ok", method={"like": "difiisr_demo", "mismatch": "a one-step ResShift row"})
    check_sampling(load_config(on_purpose))
    last = tiny_config(
        tmp_path, "last", objective={"kind": "resshift", "timesteps": "last"}, method={"like": "difiisr_demo"}
    )
    check_sampling(load_config(last))  # ResShift trained at t=T-1 only is a one-step model


@pytest.mark.timeout(300)
def test_demo_difiisr_trains_with_the_distillation_base_and_registers_as_a_method(tmp_path, monkeypatch):
    """The demo DifIISR recipe builds the SinSR objective with the frozen ResShift demo teacher; its run folder is a
    method (weights, sha256, the one-step options) that the registry finds on IRSR_RUNS_DIR, and changing the
    weights after training is refused."""
    from sr.registry import list_methods, load_method
    from sr.train.objectives.sinsr import SinSRObjective
    from sr.train.trainer import Trainer

    out = tmp_path / "runs" / "difiisr_small"
    overrides = {"train.iterations": 1, "train.progress": False, "train.tensorboard": False, "data.max_images": 2}
    cfg = load_config("difiisr_demo", {**overrides, "data.val_images": 1, "out_dir": str(out)})
    trainer = Trainer(cfg, device="cpu")
    assert isinstance(trainer.objective.base, SinSRObjective) and trainer.val_mode == "one_step"
    teacher = trainer.objective.base.teacher[0]
    assert not any(p.requires_grad for p in teacher.parameters())
    trainer.fit()
    spec = yaml.safe_load((out / "method.yaml").read_text())
    assert spec["name"] == "difiisr_small" and spec["options"]["steps_mode"] == "one_step"
    assert spec["options"]["weights"] == {"unet": "ema.safetensors"} and len(spec["weights_sha256"]["unet"]) == 64
    monkeypatch.setenv(ENV_RUNS_DIR, str(tmp_path / "runs"))
    assert "difiisr_small" in list_methods()
    method = load_method("difiisr_small")
    y = method.upscale(torch.rand(1, 1, 12, 16))
    assert y.shape == (1, 1, 48, 64) and torch.isfinite(y).all()
    assert method.weight_files()["unet"] == (out / "ema.safetensors").resolve()
    with open(out / "ema.safetensors", "r+b") as fh:  # one byte changed after training
        fh.seek(-1, os.SEEK_END)
        last = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(ConfigError, match="does not have the sha256 the training recorded"):
        load_method("difiisr_small")


def test_plan_maps_every_ablation_row_to_one_training_run_at_both_scales():
    from benchmarks.reproduce import needed_runs, resolved_config

    runs = needed_runs(["main_table3", "main_table4", "supp_table2", "supp_table3"])
    assert set(runs) == {
        "difiisr_t3_none",
        "difiisr_t3_visual",
        "difiisr_t3_perceptual",
        "difiisr_full",
        "difiisr_t4_perceptual_base_visual_sum",
        "difiisr_t4_visual_base_task_sum",
        "difiisr_s2_ssim",
        "difiisr_s2_mse",
        "difiisr_s3_lpips",
        "difiisr_s3_edge",
    }
    assert needed_runs(["main_table1"]) == {}
    other = needed_runs(["supp_table2"], "keep_other")
    assert other["difiisr_s2_ssim"] == "difiisr_s2_ssim_keep_perceptual" and other["difiisr_full"] == "difiisr_full"
    paper = resolved_config("paper", "difiisr_s3_lpips", "difiisr_s3_lpips", None)
    assert [t["kind"] for t in paper["objective"]["guidance"]["terms"]] == ["lpips"]
    assert paper["train"]["iterations"] == 250000 and paper["model"]["first_stage"] == "vq"
    demo = resolved_config("demo", "difiisr_full", "difiisr_full", 5)
    assert demo["name"] == "difiisr_full" and demo["train"]["iterations"] == 5 and demo["train"]["save_every"] == 1
    assert demo["model"]["first_stage"] == "pixel_unshuffle" and demo["objective"]["base"] == "sinsr"
    kinds = {t["kind"]: t for t in demo["objective"]["guidance"]["terms"]}
    assert set(kinds) == {"fft", "vgg", "sam"} and kinds["sam"]["model_type"] == "tiny_random"
    assert demo["random_weights"] is True
    assert "random_weights" not in resolved_config("demo", "difiisr_t3_visual", "difiisr_t3_visual", 5)


def test_reproduce_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    from benchmarks.reproduce import main

    (tmp_path / "mine.txt").write_text("user data")
    assert main(["--scale", "demo", "--out", str(tmp_path), "--only", "main_table3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and MANIFEST in err[0] and "--overwrite" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_reproduce_claims_its_folder_through_the_ownership_manifest(tmp_path, monkeypatch):
    """The folder's claim is sr.ownership's manifest (kind ``reproduction``, listing the folders it fills), the one
    mechanism of every command; a second start finds it its own. Stopped right after the claim (no training)."""
    import benchmarks.reproduce as reproduce

    class Stop(Exception):
        pass

    def stop(*_a, **_k):
        raise Stop

    monkeypatch.setattr(reproduce, "train_runs", stop)
    monkeypatch.delenv(ENV_RUNS_DIR, raising=False)  # main() puts the folder on it: restored after the test
    out = tmp_path / "R"
    for _ in range(2):
        with pytest.raises(Stop):
            reproduce.main(["--scale", "demo", "--out", str(out), "--only", "main_table3", "--no-estimate"])
    owned = read_manifest(out)
    assert owned is not None and owned.kind == "reproduction"
    assert owned.entries == set(reproduce.REPRODUCE_ENTRIES)
    assert not (out / "reproduce.json").exists()


def _reproduce(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "benchmarks.reproduce", "--scale", "demo", "--out", str(out), "--quiet", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_stand_in_flag_keeps_every_other_cell_as_written(tmp_path):
    """flag_stand_in rewrites results.csv: only the flags of the stand-in data set change (a class named "01" stays
    "01", an empty error stays empty)."""
    from benchmarks.reproduce import flag_stand_in

    csv = tmp_path / "results.csv"
    head = "suite,dataset,degradation,method,task,metric,class,value,n,ci_low,ci_high,flags,error"
    csv.write_text(
        f"{head}\ndemo,synthir_demo,bicubic,hr,detection,AP,01,0.5,3,,,scratch_init,\n"
        "demo,other,bicubic,hr,detection,AP,02,0.25,3,,,,\n"
    )
    flag_stand_in(csv, {"synthir_demo"})
    lines = csv.read_text().splitlines()
    assert lines[0] == head
    assert lines[1] == f"demo,synthir_demo,bicubic,hr,detection,AP,01,0.5,3,,,{FLAG_DEMO_STAND_IN};scratch_init,"
    assert lines[2] == "demo,other,bicubic,hr,detection,AP,02,0.25,3,,,,"


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_reproduce_demo_fills_every_ours_cell(tmp_path):
    """--scale demo --iterations 5: PSNR|ours, mAP|ours and mIoU|ours of main Tables 3/4 and supp. Tables 2/3 all
    filled, Low Resolution filled in Tables 1 and 2 for every metric computable offline, rows flagged demo_stand_in.
    Started again, it trains nothing and reuses the evaluation cache."""
    proc = _reproduce(tmp_path, "--iterations", "5")
    log, _ = proc.communicate()
    assert proc.returncode == 0, log[-3000:]
    assert "estimate:" in log and "device-hours" in log
    tables = tmp_path / "report" / "paper" / "tables"
    for key in ("main_table3", "main_table4", "supp_table2", "supp_table3"):
        t = pd.read_csv(tables / f"{key}.csv", index_col=0)
        for col in ("PSNR|ours", "mAP|ours", "mIoU|ours", "PSNR|Δ"):
            assert t[col].notna().all(), (key, col, t[col])
    t1 = pd.read_csv(tables / "main_table1.csv", index_col=0)
    t2 = pd.read_csv(tables / "main_table2.csv", index_col=0)
    df = pd.read_csv(tmp_path / "run" / "results.csv", keep_default_na=False, na_values=[""])
    lr = df[(df.method == "lr") & (df["class"] == "all") & (df.task == "quality")]
    computable = set(lr[lr.value.notna()].metric)
    assert {"psnr", "ssim", "niqe", "piqe"} <= computable  # LR at HR size: full-reference metrics too
    for table, metrics in ((t1, {"clipiqa", "musiq"}), (t2, {"psnr", "ssim", "lpips"})):
        (low,) = [row for row in table.index if row.startswith("Low Resolution")]  # label + flag marks (◊)
        for col in table.columns:
            name = col.split("/")[-1].split("|")[0].lower().replace("-", "")
            if col.endswith("|ours") and name in metrics & computable:
                assert pd.notna(table.loc[low, col]), col
    assert t2.loc[low].filter(like="PSNR|ours").notna().all() and t2.loc[low].filter(like="SSIM|ours").notna().all()
    assert df["flags"].map(lambda f: FLAG_DEMO_STAND_IN in split_flags(f)).all()

    again = _reproduce(tmp_path, "--iterations", "5")
    log2, _ = again.communicate()
    assert again.returncode == 0, log2[-3000:]
    assert (
        log2.count("finished earlier, reused") == 10 and "[reproduce] training" not in log2 and "estimate:" not in log2
    )


def _wait_for(predicate, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, "timed out waiting"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_killed_reproduction_resumes_without_repeating_work(tmp_path):
    """Killed once mid-training and once mid-evaluation: the rerun resumes the killed training from its checkpoint
    (the finished runs are not trained again) and the evaluation recomputes only what its cache lacks."""
    args = ("--iterations", "6", "--only", "main_table3", "--no-estimate")
    train = tmp_path / "train"
    proc = _reproduce(tmp_path, *args)
    _wait_for(lambda: (train / "difiisr_t3_visual" / "ckpt" / "last.pt").is_file(), proc, 1800)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (train / "difiisr_t3_none" / "method.yaml").is_file()
    assert not (train / "difiisr_t3_visual" / "method.yaml").is_file()
    none_mtime = (train / "difiisr_t3_none" / "ema.safetensors").stat().st_mtime_ns
    from sr.checkpoint import load_checkpoint

    killed_at = int(load_checkpoint(train / "difiisr_t3_visual" / "ckpt" / "last.pt")["step"])
    assert 1 <= killed_at < 6

    proc = _reproduce(tmp_path, *args)
    cache = tmp_path / "run" / "cache"
    _wait_for(lambda: cache.is_dir() and sum(1 for p in cache.rglob("*.png")) >= 3, proc, 1800)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log_killed = proc.stdout.read()
    assert f"training difiisr_t3_visual (6 iterations, resuming at step {killed_at})" in log_killed
    assert "difiisr_t3_none: finished earlier, reused" in log_killed
    assert (train / "difiisr_t3_none" / "ema.safetensors").stat().st_mtime_ns == none_mtime
    pngs = {p: p.stat().st_mtime_ns for p in cache.rglob("*.png")}

    proc = _reproduce(tmp_path, *args)
    log, _ = proc.communicate()
    assert proc.returncode == 0, log[-3000:]
    assert log.count("finished earlier, reused") == 4 and "[reproduce] training" not in log
    assert all(p.stat().st_mtime_ns == m for p, m in pngs.items())  # cached SR outputs not recomputed
    t3 = pd.read_csv(tmp_path / "report" / "paper" / "tables" / "main_table3.csv", index_col=0)
    assert t3["PSNR|ours"].notna().all() and t3["mAP|ours"].notna().all()


def test_paper_scale_scores_three_channels_under_the_data_sets_own_names(tmp_path):
    """At paper scale the data sets are read with channels: 3 (the official evaluation scores 3-channel outputs):
    a YAML per data set that inherits the suite's and keeps its row name."""
    from benchmarks.reproduce import scale_config, with_channels
    from downstream.datasets import dataset_config, dataset_label

    assert scale_config("paper")["channels"] == 3 and not scale_config("demo").get("channels")
    paths = with_channels(["m3fd_set5", "fmb_test"], 3, tmp_path)
    assert [dataset_label(p) for p in paths] == ["m3fd_set5", "fmb_test"]
    cfg = dataset_config(paths[0])
    assert cfg["channels"] == 3 and cfg["split"] == dataset_config("m3fd_set5")["split"]
    assert with_channels(["synthir_demo"], None, tmp_path) == ["synthir_demo"]


def test_the_device_hours_estimate_times_every_run_in_a_folder_the_trainer_may_claim(tmp_path, capsys):
    """The estimate times a few iterations of every run left to train (their guidance terms set the cost: timing
    only the first, unguided run once gave a fifth of the real time), each in a scratch run folder the trainer makes
    itself (it refuses an existing folder it did not make: the estimate used to hand it mkdtemp's)."""
    import argparse
    import re

    from benchmarks.reproduce import estimate, needed_runs, resolved_config

    runs = dict(list(needed_runs(["main_table3"]).items())[:2])
    plan = {run: resolved_config("demo", run, config, 5) for run, config in runs.items()}
    args = argparse.Namespace(weights_dir=None, device="cpu")
    hours = estimate(plan, list(plan), tmp_path, args)
    out = capsys.readouterr().out
    per_run = dict(re.findall(r"estimate: (\S+): ([0-9.]+) s per iteration, 5 left", out))
    assert set(per_run) == set(plan), out
    assert hours == pytest.approx(sum(5 * float(s) for s in per_run.values()) / 3600, rel=1e-2, abs=1e-6)
    assert "2 training run(s), 10 iterations left" in out and "device-hours" in out
