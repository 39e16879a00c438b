"""The one timed-call loop of benchmarks/ (``benchmarks.speed.timing.time_calls``) and what every measurement tool
shares through it: option spellings, CSV column names, units (ms, GiB). Calls and synchronisations are
counted and memory is measured; wall-clock is never asserted."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import mmap
import statistics
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.speed import gpu_check, memory, official, perf, timing, train_cost


def test_time_calls_runs_warmup_then_repeat_calls_and_times_only_the_repeats():
    calls = []
    t = timing.time_calls(lambda: calls.append(len(calls)) or len(calls), "cpu", warmup=2, repeat=3)
    assert len(calls) == 5 and len(t.times_ms) == 3
    assert t.output == 5  # the last call's result
    assert t.median_ms == statistics.median(t.times_ms) and t.p90_ms == max(t.times_ms)
    assert t.peak_gib != t.peak_gib  # nan: no CPU peak unless asked for
    with pytest.raises(ValueError):
        timing.time_calls(lambda: None, "cpu", warmup=0, repeat=0)


def test_time_calls_synchronises_cuda_around_every_timed_call_and_reports_gib(monkeypatch):
    """On a CUDA device: synchronise before and after each timed call, peak = max allocated - allocated
    before the calls, in GiB (torch.cuda replaced by recorders: no GPU needed)."""
    events: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: events.append("reset"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 2**30)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 2**30 + 3 * 2**28)
    t = timing.time_calls(lambda: events.append("call"), "cuda", warmup=1, repeat=2)
    assert events == ["sync", "reset", "call", "sync", "call", "sync", "sync", "call", "sync"]
    assert t.peak_gib == 0.75 and t.base_gib == 1.0 and len(t.times_ms) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")
def test_cpu_peak_is_the_resident_growth_of_the_calls_in_gib():
    size = 256 * 2**20

    def touch():  # fresh pages outside the allocator, so no freed buffer can be reused
        with mmap.mmap(-1, size) as buf:
            for i in range(0, size, mmap.PAGESIZE):
                buf[i] = 1

    t = timing.time_calls(touch, "cpu", warmup=0, repeat=1, cpu_peak=True)
    if not t.peak_reset:
        pytest.skip("/proc/self/clear_refs is not writable here")
    assert 0.24 <= t.peak_gib < 1.0 and t.base_gib > 0


def test_time_parts_records_each_timed_call_and_not_the_warmup():
    class FakeSampler:
        def _encode(self, x):
            return x

        def _model(self, x):
            return x

        def _decode(self, x):
            return x

    sampler = FakeSampler()
    parts = timing.time_parts(sampler, "cpu")

    def one_frame():  # two UNet calls per frame, like a two-step sampler
        return sampler._decode(sampler._model(sampler._model(sampler._encode(1))))

    t = timing.time_calls(one_frame, "cpu", warmup=2, repeat=3, parts=parts)
    assert len(t.parts_ms) == 3 and all(set(p) == set(timing.PARTS) for p in t.parts_ms)
    assert set(t.part_medians_ms()) == set(timing.PARTS) and all(v >= 0 for v in t.part_medians_ms().values())


def test_shared_options_parse_alike():
    assert timing.sizes("64x64, 256x192") == ["64x64", "256x192"]
    assert timing.parse_size("256x192") == (256, 192)
    assert timing.precisions('fp32,mixed,{"unet":"bf16","decode":"fp16"},auto') == [
        "fp32",
        "mixed",
        '{"unet":"bf16","decode":"fp16"}',
        "auto",
    ]
    assert timing.policy('{"unet":"bf16"}') == {"unet": "bf16"} and timing.policy("bf16") == "bf16"
    for bad_sizes in ("64", "0x4", "ax4", "64x64,"):
        with pytest.raises(Exception, match="WxH|empty"):
            timing.sizes(bad_sizes)
    for bad in ("bf32", '{"decoder":"bf16"}', "{not json}"):
        with pytest.raises(Exception, match="precision|JSON"):
            timing.precisions(bad)
    p = perf.build_parser()
    args = p.parse_args(["--sizes", "32x24,16x16", "--precisions", "fp32,mixed", "--warmup", "0", "--repeat", "2"])
    assert (args.sizes, args.precisions, args.warmup, args.repeat) == (["32x24", "16x16"], ["fp32", "mixed"], 0, 2)
    g = gpu_check.build_parser().parse_args(["--sizes", "64x64", "--precisions", "fp32"])
    assert (g.sizes, g.precisions) == (["64x64"], ["fp32"])


def test_arch_is_one_option_in_every_tool_that_builds_difiisr():
    from benchmarks.speed import precision

    def arch(tool):
        (action,) = [a for a in tool.build_parser()._actions if "--arch" in a.option_strings]
        return action.choices, action.default, action.help

    assert arch(perf) == arch(gpu_check) == arch(precision)
    assert arch(perf)[:2] == (("full", "small"), "full")
    for tool in (perf, gpu_check, precision):
        assert tool.build_parser().parse_args(["--arch", "small"]).arch == "small"


@pytest.mark.parametrize(
    "tool, argv",
    [
        (perf, ["--dtypes", "fp32"]),
        (perf, ["--official-arch", "small"]),
        (perf, ["--precisions", "int8"]),
        (perf, ["--batch", "0"]),
        (perf, ["--variants", "eager,fast"]),
        (perf, ["--stages", "--prefetch-ab", "-1"]),
        (gpu_check, ["--policies", "fp32"]),
        (memory, ["--lr-size", "64x64"]),
        (memory, ["--max-untiled-gb", "1"]),
        (memory, ["--probe-size", "256"]),
        (train_cost, ["--steps", "3"]),
        (train_cost, ["--repeat", "0"]),
    ],
)
def test_old_spellings_and_bad_values_are_one_error_line(tool, argv, capsys):
    assert tool.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err


# columns that spell a shared concept in another way or unit than benchmarks.speed.timing's
OLD_NAMES = {"dtype", "policy", "lr_size", "hr_size", "latency_s", "p90_s", "images_per_s", "peak_mem_mb", "peak_mb"}
TOOL_COLUMNS = {
    "perf": perf.COLUMNS,
    "perf --stages": perf.STAGE_COLUMNS,
    "perf --stages --allocator-ab": perf.ab_columns("allocator"),
    "perf --stages --prefetch-ab": perf.ab_columns("prefetch"),
    "perf --official-repo": official.COLUMNS,
    "memory": memory.COLUMNS,
    "train_cost": train_cost.COLUMNS,
}


@pytest.mark.parametrize("tool", list(TOOL_COLUMNS))
def test_every_tool_uses_the_shared_column_names_and_units(tool):
    cols = TOOL_COLUMNS[tool]
    assert not OLD_NAMES & set(cols), cols
    other_units = [c for c in cols if c.endswith(("_s", "_sec", "seconds", "_mb", "_gb")) and "_per_" not in c]
    assert not other_units, cols
    assert [c for c in cols if c.endswith(timing.UNIT_SUFFIXES)], f"{tool}: no time or memory column"
    if not tool.startswith("perf --stages"):  # per-call measurements
        assert {timing.COL_LATENCY_MS, timing.COL_PEAK_GIB} <= set(cols)


def _header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


def test_perf_writes_the_shared_columns_in_ms_and_gib(tmp_path, capsys):
    out = tmp_path / "perf.csv"
    argv = ["--methods", "bicubic", "--sizes", "16x12", "--device", "cpu", "--in-process", "--repeat", "2"]
    assert perf.main([*argv, "--out", str(out)]) == 0
    assert _header(out) == perf.COLUMNS
    with open(out, newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["precision"] == "fp32" and row["repeats"] == "2" and float(row["latency_ms"]) > 0
    latency = float(row["latency_ms"])  # rounded to 0.001 ms; frames/s comes from the unrounded median
    assert float(row["frames_per_s"]) == pytest.approx(1e3 / latency, rel=1e-4 + 5e-4 / latency)


def test_perf_measures_each_configuration_through_its_child_side(tmp_path, monkeypatch):
    """Without --in-process every configuration goes through ``timing.run_child`` and perf's ``--child`` side (here
    in this process: run_child stubbed to call ``perf.main(["--child", JSON])`` and read back its JSON line). Perf's
    parent-side runner and its child-side answer are two functions: one name for both broke the grid."""
    calls = []

    def child_in_this_process(module, payload, timeout=None):
        calls.append(module)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert perf.main(["--child", json.dumps(payload)]) == 0
        return json.loads(printed.getvalue().splitlines()[-1]), "ok", ""

    monkeypatch.setattr(timing, "run_child", child_in_this_process)
    out = tmp_path / "perf.csv"
    argv = ["--methods", "bicubic", "--sizes", "16x12", "--device", "cpu", "--repeat", "2", "--out", str(out)]
    assert perf.main(argv) == 0
    assert calls == ["benchmarks.speed.perf"]
    with open(out, newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["status"] == "ok" and float(row["latency_ms"]) > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")
def test_memory_writes_the_shared_columns(tmp_path):
    out = tmp_path / "mem.csv"
    argv = ["--methods", "bicubic", "--sizes", "32x24", "--configs", "default", "--out", str(out)]
    assert memory.main(argv) == 0
    assert _header(out) == memory.COLUMNS
    with open(out, newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["status"] == "ok" and row["size"] == "32x24" and row["size_out"] == "128x96"
    assert float(row["peak_gib"]) >= 0 and float(row["latency_ms"]) > 0


def test_train_cost_times_warmup_and_repeat_steps_per_round(tmp_path, monkeypatch, capsys):
    """--warmup untimed steps per variant, then --rounds x --repeat timed ones (counted on the trainer)."""
    steps: dict[int, int] = {}
    real = train_cost.Trainer.train_step

    def counting(self, *a, **k):
        steps[id(self)] = steps.get(id(self), 0) + 1
        return real(self, *a, **k)

    monkeypatch.setattr(train_cost.Trainer, "train_step", counting)
    out = tmp_path / "tc.csv"
    argv = ["--warmup", "1", "--repeat", "1", "--rounds", "2", "--device", "cpu", "--out", str(out)]
    assert train_cost.main(argv) == 0
    assert sorted(steps.values()) == [3] * len(train_cost.variants(["fft"]))
    assert _header(out) == train_cost.COLUMNS
    with open(out, newline="") as fh:
        rows = {r["variant"]: r for r in csv.DictReader(fh)}
    assert rows["none"]["ratio_to_unguided"] == "1.0" and all(r["repeats"] == "2" for r in rows.values())
