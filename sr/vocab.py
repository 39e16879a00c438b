"""The project's shared names: result-table columns, row flags, CLI option spellings, env variables.

Every producer of result rows (methods, metrics, tasks, the runner) and every consumer (reports,
regression check) spells these names through this module, so a flag set in one place is the flag
looked for in another. It sits in ``sr`` because that is the lowest layer every other package
imports.
"""

from __future__ import annotations

# ----- the long-format results table (results.csv) -----------------------------------------------
COL_SUITE = "suite"
COL_DATASET = "dataset"
COL_METHOD = "method"
COL_TASK = "task"
COL_METRIC = "metric"
COL_CLASS = "class"
COL_VALUE = "value"
COL_N = "n"
COL_CI_LOW = "ci_low"  # 95 % bootstrap interval of the mean over images
COL_CI_HIGH = "ci_high"
COL_FLAGS = "flags"
COL_ERROR = "error"
#: the degradation that made the LR input (downstream degradations; "bicubic" is the paper's protocol)
COL_DEGRADATION = "degradation"
DEGRADATION_DEFAULT = "bicubic"

#: the identifying columns of one result row
KEY_COLUMNS = (COL_SUITE, COL_DATASET, COL_DEGRADATION, COL_METHOD, COL_TASK, COL_METRIC, COL_CLASS)
#: every column of results.csv, in order
RESULT_COLUMNS = (*KEY_COLUMNS, COL_VALUE, COL_N, COL_CI_LOW, COL_CI_HIGH, COL_FLAGS, COL_ERROR)

CLASS_ALL = "all"  # the class value of a row over all classes

# ----- row flags: caveats a number carries into every table --------------------------------------
#: flags are joined with this separator in the ``flags`` column
FLAG_SEP = ";"
#: made with random weights (explicit ``--random-weights`` for a missing file): not a measurement
FLAG_RANDOM_WEIGHTS = "random_weights"
#: a downstream model trained from scratch because no pretrained start was in the weights directory
FLAG_SCRATCH_INIT = "scratch_init"
#: NIQE computed with the pristine parameters shipped with this project (basicsr 1.4.2), not pyiqa's file
FLAG_NIQE_FALLBACK_PARAMS = "niqe_fallback_params"
#: the data set (or a named subset such as Set5/15/20) had fewer frames than asked
FLAG_SUBSET_SMALLER = "subset_smaller"
#: an SR network whose training losses used random-weight feature networks (its file's metadata says so)
FLAG_TRAINED_WITH_RANDOM_WEIGHTS = "trained_with_random_weights"
#: the task model predicted nothing (or scored 0 on every method, hr included): the task row says nothing of SR
FLAG_VOID_TASK = "void_task"
#: a class present in the evaluation split but absent from the task model's training split
FLAG_CLASS_ABSENT_IN_TRAINING = "class_absent_in_training"
#: the SR output, degraded again with the data set's own operator, does not match its LR input (lr_psnr low)
FLAG_LR_INCONSISTENT = "lr_inconsistent"
#: a synthetic stand-in for a paper data set (benchmarks.reproduce --scale demo): not the paper's data
FLAG_DEMO_STAND_IN = "demo_stand_in"

#: table marks and footnotes of every flag (md, csv, tex and html use the same marks)
FLAG_MARKS = {
    FLAG_RANDOM_WEIGHTS: "†",
    FLAG_SCRATCH_INIT: "‡",
    FLAG_NIQE_FALLBACK_PARAMS: "§",
    FLAG_SUBSET_SMALLER: "¶",
    FLAG_TRAINED_WITH_RANDOM_WEIGHTS: "°",
    FLAG_VOID_TASK: "∅",
    FLAG_CLASS_ABSENT_IN_TRAINING: "♮",
    FLAG_LR_INCONSISTENT: "≠",
    FLAG_DEMO_STAND_IN: "◊",
}
FLAG_NOTES = {
    FLAG_RANDOM_WEIGHTS: "made with random weights: a plumbing check, not a measurement",
    FLAG_SCRATCH_INIT: "task model trained from scratch (no pretrained start in the weights directory)",
    FLAG_NIQE_FALLBACK_PARAMS: "NIQE with the project's bundled pristine parameters (basicsr 1.4.2), "
    "not pyiqa's niqe_modelparameters.mat",
    FLAG_SUBSET_SMALLER: "computed on fewer frames than the subset asked for",
    FLAG_TRAINED_WITH_RANDOM_WEIGHTS: "SR network trained with random-weight feature networks in its losses "
    "(a plumbing run, e.g. the committed demo weights)",
    FLAG_VOID_TASK: "the task model predicted nothing (or scored 0 on every method, hr included): a model trained "
    "from scratch on a small set often does; start from pretrained weights or train longer",
    FLAG_CLASS_ABSENT_IN_TRAINING: "class absent from the task model's training split: excluded from 'all' "
    "(an 'all' row with this mark still includes it: the task's keep_absent_classes option)",
    FLAG_LR_INCONSISTENT: "SR output inconsistent with its LR input (lr_psnr below the threshold): never marked best",
    FLAG_DEMO_STAND_IN: "synthetic demo data standing in for the paper's data set: not the paper's numbers",
}
#: the mark of a flag this module does not know (the notes then name the flag itself)
FLAG_UNKNOWN_MARK = "*"


def join_flags(flags) -> str:
    """The ``flags`` cell of a row: sorted, unique, ``;``-joined."""
    return FLAG_SEP.join(sorted({f for f in flags if f}))


def split_flags(cell) -> set[str]:
    """The flags of one ``flags`` cell (empty / NaN cells have none)."""
    if not isinstance(cell, str):
        return set()
    return {f for f in cell.split(FLAG_SEP) if f}


# ----- command-line options shared by several entry points -------------------------------------
OPT_DEVICE = "--device"
OPT_WEIGHTS_DIR = "--weights-dir"
OPT_RANDOM_WEIGHTS = "--random-weights"
OPT_DEBUG = "--debug"
OPT_REFERENCE = "--reference"
#: benchmarks.run: frames loaded ahead of / PNGs written behind the SR step in background threads (0 = sequential)
OPT_PREFETCH = "--prefetch"
#: benchmarks.run: how many worker processes run the jobs (benchmarks.pool; default $IRSR_WORKERS, else auto)
OPT_WORKERS = "--workers"
#: write into an existing folder the tool did not make, beside the user's files (never deleting them)
OPT_OVERWRITE = "--overwrite"
#: benchmarks.run: the degradation axis (NAME or NAME@SEVERITY, comma-separated)
OPT_DEGRADATIONS = "--degradations"
#: benchmarks.run (and benchmarks.reproduce): measure the methods' efficiency table into the run folder
OPT_EFFICIENCY = "--efficiency"
#: benchmarks.run --methods outputs:DIR[=NAME]: score a folder of SR outputs made elsewhere (sr.methods.outputs)
METHOD_OUTPUTS_PREFIX = "outputs:"

# ----- metric names that code (not only metrics.yaml) refers to ----------------------------------
#: LR consistency: PSNR of the SR output degraded with the data set's own operator against the LR input
METRIC_LR_PSNR = "lr_psnr"

# -- the efficiency table: benchmarks.speed.efficiency writes <run>/efficiency.csv, the reports render it ----------
EFFICIENCY_FILE = "efficiency.csv"
COL_PARAMS_M = "params_m"  # millions of parameters of the method's networks (every network its upscale runs)
COL_GFLOPS = "gflops"  # torch.utils.flop_counter.FlopCounterMode total of one upscale call / 1e9 (multiply-add = 2)
#: efficiency.csv's columns in order; size / size_out (LR / SR WxH), latency_ms (median), peak_gib, threads, repeats,
#: status and note are benchmarks.speed.timing's columns of the same name
EFFICIENCY_COLUMNS = (
    COL_METHOD,
    *("size", "size_out", "device", "threads", COL_PARAMS_M, COL_GFLOPS, "latency_ms", "peak_gib", "repeats"),
    *(COL_FLAGS, "status", "note", "config"),
)

# ----- environment variables ---------------------------------------------------------------------
ENV_WEIGHTS_DIR = "IRSR_WEIGHTS_DIR"
ENV_DATA_DIR = "IRSR_DATA_DIR"
ENV_CONFIG_DIR = "IRSR_CONFIG_DIR"
#: folders of finished training runs, each a method (sr.registry.runs_dirs; os.pathsep-separated)
ENV_RUNS_DIR = "IRSR_RUNS_DIR"
ENV_CACHE_DIR = "IRSR_CACHE_DIR"
ENV_EXTERNAL_WORK_DIR = "IRSR_EXTERNAL_WORK_DIR"
#: the most pixels one decoded image may have (downstream.imageio; checked from the header, before decoding)
ENV_MAX_PIXELS = "IRSR_MAX_PIXELS"
ENV_SHARED_DIR = "IRSR_SHARED_DIR"
#: set (to 1) by CI: tests that would skip because ../shared (conformance kit, real data) is absent fail
ENV_REQUIRE_SHARED = "IRSR_REQUIRE_SHARED"
#: 0 turns off the glibc allocator tuning every entry point applies at start-up (sr.runtime.tune_process)
ENV_MALLOC_TUNING = "IRSR_MALLOC_TUNING"
#: benchmarks.run's --workers default (auto or N; the tests set 1: in-process jobs see their monkeypatches)
ENV_WORKERS = "IRSR_WORKERS"
