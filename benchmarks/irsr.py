"""``irsr``: the one command of the project (a console script; ``python -m benchmarks.irsr`` is the same).

``irsr COMMAND [SUBCOMMAND] ARGS...`` runs the entry point that :data:`COMMANDS` names for it with ``ARGS``: the
module's own ``main(argv)`` and therefore its own parser, so ``irsr run --limit 2`` and
``python -m benchmarks.run --limit 2`` are parsed by the same code (only the usage line says ``irsr run``).
Adding a command is one line of :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
import sys
from argparse import RawDescriptionHelpFormatter

from sr import cli
from sr.cli import cli_entry

#: command words -> (module whose ``main(argv)`` runs it, one line of help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("run",): ("benchmarks.run", "score SR methods on data sets: quality metrics, detection, segmentation"),
    ("report",): ("reports.__main__", "regenerate a run's report from its results.csv"),
    ("paper",): ("reports.paper", "the paper's tables from a run, next to the published numbers"),
    ("reproduce",): ("benchmarks.reproduce", "train what the paper's tables need, evaluate, fill the tables"),
    ("prepare", "detection"): ("downstream.detection.prepare", "turn a detection data set download into a layout"),
    ("prepare", "segmentation"): ("downstream.segmentation.prepare", "the same for a segmentation data set"),
    ("train", "sr"): ("sr.train.__main__", "train an SR model (DifIISR, ResShift, SinSR, ...) from a config"),
    ("train", "detection"): ("downstream.detection.train", "train a YOLO detector for the detection task"),
    ("train", "segmentation"): ("downstream.segmentation.train", "train a SegFormer for the segmentation task"),
    ("weights",): ("sr.weights.cli", "list, locate, verify, fetch and convert pretrained weights"),
    ("perf",): ("benchmarks.speed.perf", "time SR methods stage by stage"),
    ("regress",): ("benchmarks.regress", "compare a run's task metrics with a baseline"),
    ("ls",): ("benchmarks.catalog", "list methods (with weights status), data sets, metrics, tasks, suites"),
    ("validate",): ("benchmarks.validate", "check a method, data set, task, suite, training or degradation YAML"),
}


def _listing(commands: dict[tuple[str, ...], tuple[str, str]]) -> str:
    width = max(len(" ".join(words)) for words in commands)
    lines = [f"  {' '.join(words):<{width}}  {summary}" for words, (_, summary) in commands.items()]
    return "commands (irsr COMMAND --help for each):\n" + "\n".join(lines)


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(
        prog="irsr",
        description="Infrared super-resolution benchmark: every command of the project.",
        epilog=_listing(COMMANDS),
        formatter_class=RawDescriptionHelpFormatter,
    )
    p.add_argument("command", choices=sorted({words[0] for words in COMMANDS}), metavar="COMMAND")
    return p


def resolve(words: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The command named by the first words of ``words`` and the arguments after it; a UsageError otherwise."""
    for n in (2, 1):
        if tuple(words[:n]) in COMMANDS:
            return tuple(words[:n]), words[n:]
    group = sorted(w[1] for w in COMMANDS if len(w) == 2 and w[0] == words[0])
    given = f"'{words[1]}'" if len(words) > 1 else "nothing"
    raise cli.UsageError(f"irsr {words[0]}: expected one of {', '.join(group)}, got {given}")


@cli_entry
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    build_parser().parse_args(argv[:1])  # --help, or a usage error for a missing or unknown command
    words, rest = resolve(argv)
    module = importlib.import_module(COMMANDS[words][0])
    with cli.invoked_as("irsr " + " ".join(words)):
        return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
