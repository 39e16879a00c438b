"""Run another repository's own inference script on a folder of LR images (CoRPLE, BI-DiffSR, yours).

A method YAML describes the command; the adapter writes the LR batch as 8-bit RGB PNGs into a fresh
run folder, fills the templates, runs the command (``shell=False``, with a timeout), captures its
stdout+stderr in ``command.log`` and reads one SR image per input back::

    factory: sr.methods.external:ExternalCommand
    options:
      command: "{python} test.py --in {input} --out {output} --scale {scale} --device {device}"
      repo_env: IRSR_MYREPO_DIR          # the checkout (or give repo_dir)
      weights: myrepo_x4                 # optional weights-registry entry -> {weights}
      output_name: "{id}_SR.png"        # how the script names its outputs (default {id}.png)

Placeholders, filled in ``command`` (each argument of the split command: an argv list, no shell), ``cwd``,
``env`` values, ``output_dir`` and the ``config_template`` YAML (by value, :func:`fill_config`):
``{input}`` LR folder, ``{output}`` folder for outputs, ``{scale}``, ``{device}``, ``{num_gpu}``
(0 on CPU, else 1), ``{python}``, ``{repo}``, ``{weights}``, ``{config}`` (the filled
``config_template``, for scripts driven by a YAML such as BasicSR's ``-opt``), ``{gt}`` (a folder of
bicubic placeholders at HR size, written when ``write_gt`` is set, for scripts that insist on paired
data), ``{run}`` (a unique run id) and ``{work}`` (the run folder). Other braces are left alone.

Prerequisites (checkout present, interpreter found, weights on disk, config template readable) are
checked when the method is built, so an unavailable method is reported with its reason before any
image is processed. Failures while running name the command, the missing or wrong file and the log.
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from sr import weights as weights_registry
from sr.base import SRMethod
from sr.config import CONFIG_DIR
from sr.errors import ConfigError, MissingWeightsError, UserError
from sr.safeparse import load_yaml
from sr.vocab import ENV_EXTERNAL_WORK_DIR

DOCS = "docs/external_methods.md"
_TAIL_LINES = 15
_counter = itertools.count()


class ExternalMethodError(UserError):
    """An external command could not run, failed, timed out, or wrote missing / wrong outputs."""


class ExternalSetupError(ExternalMethodError):
    """An external method's prerequisites (checkout, interpreter, weights) are not in place."""


def fill(template: str, values: dict[str, Any]) -> str:
    """Replace ``{key}`` for the keys of ``values`` only; every other brace stays as written."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def fill_config(template: str, values: dict[str, Any]) -> str:
    """A YAML config template filled by value, never by text: each placeholder becomes a unique token, the
    YAML is parsed, tokens are replaced inside the parsed strings (a scalar that is exactly one token takes
    the value with its type: ``scale: {scale}`` stays an int) and the result is written by ``yaml.safe_dump``.
    A value (a path holding a newline and ``key: value``, quotes, ...) can never add keys or change structure."""
    tokens = {key: f"IRSR_PLACEHOLDER_{i}_" for i, key in enumerate(values)}

    def plain(value: Any) -> Any:
        return value if isinstance(value, (bool, int, float)) else str(value)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {walk(k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            for key, token in tokens.items():
                if node == token:
                    return plain(values[key])
            for key, token in tokens.items():
                node = node.replace(token, str(values[key]))
        return node

    parsed = load_yaml(fill(template, tokens), "config template")
    return yaml.safe_dump(walk(parsed), sort_keys=False, allow_unicode=True)


def _log_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return ""
    if not text:
        return ""
    return "\n  | " + "\n  | ".join(text[-lines:])


def _checkout(
    repo_dir: str | None, repo_env: str | None, repo_url: str | None, repo_check: list[str] | None, problems: list
) -> Path | None:
    """The repository's checkout (``repo_dir``, else the folder ``repo_env`` names), or None when none is
    configured; what is wrong with it goes to ``problems``."""
    where = f"a checkout of {repo_url}" if repo_url else "the repository's checkout"
    if repo_dir is None and repo_env:
        repo_dir = os.environ.get(repo_env) or None
        if repo_dir is None:
            problems.append(f"set {repo_env} to {where}")
    if repo_dir is None:
        return None
    repo = Path(repo_dir).expanduser().resolve()
    if not repo.is_dir():
        hint = f" (from {repo_env})" if repo_env and os.environ.get(repo_env) else ""
        problems.append(f"repository folder {repo}{hint} does not exist; it should be {where}")
    else:
        for rel in repo_check or ():
            if not (repo / rel).exists():
                problems.append(f"{repo / rel} is missing: is {repo} {where}?")
    return repo


def _interpreter(python: str | None, python_env: str | None, problems: list) -> str:
    """The interpreter to run the command with (``python``, else ``$python_env``, else this one), found on PATH;
    one that is not found or not executable goes to ``problems``."""
    python = python or (os.environ.get(python_env) if python_env else None) or sys.executable
    found = shutil.which(python) if os.sep not in python else (python if os.access(python, os.X_OK) else None)
    if found is None:
        source = f" (from {python_env})" if python_env and os.environ.get(python_env) else ""
        problems.append(f"python interpreter {python!r}{source} not found or not executable")
    return found or python


def _config_template(config_template: str | None, problems: list) -> tuple[str | None, str | None]:
    """(the config template's text, its file name), (None, None) without one; a template that cannot be read or
    is not YAML goes to ``problems``."""
    if config_template is None:
        return None, None
    path = Path(config_template)
    path = path if path.is_absolute() else CONFIG_DIR / path
    try:
        text = path.read_text()
    except OSError as exc:
        problems.append(f"config template {path} cannot be read ({exc.strerror or exc})")
        return None, None
    if path.suffix not in (".yml", ".yaml"):
        problems.append(
            f"config template {path} must be a YAML file (.yml / .yaml): it is filled by value through a YAML parser"
        )
    return text, path.name


class ExternalCommand(SRMethod):
    """SR by an external command on a folder of PNGs (see the module docstring for the options)."""

    rgb_only = True  # the images handed to the command are RGB PNGs

    def __init__(
        self,
        name: str,
        scale: int,
        *,
        command: str,
        repo_dir: str | None = None,
        repo_env: str | None = None,
        repo_url: str | None = None,
        repo_check: list[str] | None = None,
        python: str | None = None,
        python_env: str | None = None,
        weights: str | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        config_template: str | None = None,
        output_dir: str = "{output}",
        input_name: str = "{id}.png",
        output_name: str = "{id}.png",
        write_gt: bool = False,
        timeout: float = 3600.0,
        work_dir: str | None = None,
        keep_files: bool = False,
        **common,
    ):
        super().__init__(name, scale, **common)
        if not command or not isinstance(command, str):
            raise ConfigError(f"method {name!r}: 'command' must be a non-empty command template")
        if float(timeout) <= 0:
            raise ConfigError(f"method {name!r}: timeout must be positive, got {timeout!r}")
        for option, template in (("input_name", input_name), ("output_name", output_name)):
            if "{id}" not in template:
                raise ConfigError(f"method {name!r}: {option} must contain {{id}}, got {template!r}")
        self.command, self.cwd_template, self.env_templates = command, cwd, dict(env or {})
        self.output_dir_template, self.input_name, self.output_name = output_dir, input_name, output_name
        self.write_gt, self.timeout, self.keep_files = bool(write_gt), float(timeout), bool(keep_files)
        self.work_root = (
            Path(work_dir or os.environ.get(ENV_EXTERNAL_WORK_DIR) or Path(tempfile.gettempdir()) / "irsr_external")
            / name
        )
        self.last_log: Path | None = None

        problems: list[str] = []
        random_allowed, self.random_weights = self.random_weights, False  # it runs its repository's own weights
        self.repo = _checkout(repo_dir, repo_env, repo_url, repo_check, problems)
        self.python = _interpreter(python, python_env, problems)
        # the weights
        self.weights_name, self.weights_path = weights, None
        if weights is not None:
            try:
                self.weights_path = weights_registry.resolve(weights, self.weights_dir)
            except MissingWeightsError as exc:
                problems.append(
                    str(exc).rstrip(".")
                    + ("; an external command cannot run with random weights" if random_allowed else "")
                )
        self.config_text, self.config_name = _config_template(config_template, problems)
        if problems:
            raise ExternalSetupError(
                f"method {name!r} is not set up: " + "; ".join(problems) + f". Set-up steps: {DOCS}."
            )

    # -- what the runner needs ------------------------------------------------------------------
    def weight_files(self) -> dict[str, Path]:
        return {} if self.weights_path is None else {"network": self.weights_path}

    # -- one run ------------------------------------------------------------------------------------
    def _values(self, run_dir: Path, run_id: str) -> dict[str, Any]:
        return {
            "input": run_dir / "input",
            "output": run_dir / "output",
            "gt": run_dir / "gt",
            "scale": self.scale,
            "device": str(self.device),
            "num_gpu": 0 if self.device.type == "cpu" else 1,
            "python": self.python,
            "repo": self.repo if self.repo is not None else "",
            "weights": self.weights_path or "",
            "config": run_dir / (self.config_name or "config.yml"),
            "run": run_id,
            "work": run_dir,
        }

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_counter)}"
        self.work_root.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"run-{run_id}-", dir=self.work_root))
        values = self._values(run_dir, run_id)
        for key in ("input", "output"):
            Path(values[key]).mkdir()
        ids = [f"{i:04d}" for i in range(x.shape[0])]
        arr = (x.detach().cpu().clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)
        height, width = x.shape[2] * self.scale, x.shape[3] * self.scale
        for sample_id, image in zip(ids, arr):
            Image.fromarray(image, mode="RGB").save(Path(values["input"]) / fill(self.input_name, {"id": sample_id}))
            if self.write_gt:
                Path(values["gt"]).mkdir(exist_ok=True)
                Image.fromarray(image, mode="RGB").resize((width, height), Image.Resampling.BICUBIC).save(
                    Path(values["gt"]) / fill(self.input_name, {"id": sample_id})
                )
        if self.config_text is not None:
            Path(values["config"]).write_text(fill_config(self.config_text, values))

        log_path = run_dir / "command.log"
        self.last_log = log_path
        self._run_command(values, log_path)

        out_dir = Path(fill(self.output_dir_template, values))
        images = [self._read_output(out_dir, sample_id, (height, width), log_path) for sample_id in ids]
        if not self.keep_files:
            shutil.rmtree(run_dir, ignore_errors=True)
            if out_dir.is_dir() and run_id in str(out_dir) and not out_dir.is_relative_to(run_dir):
                shutil.rmtree(out_dir, ignore_errors=True)  # e.g. <repo>/results/irsr_<run>/visualization/...
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(x.device)

    def _run_command(self, values: dict[str, Any], log_path: Path) -> None:
        try:
            args = [fill(token, values) for token in shlex.split(self.command)]
        except ValueError as exc:
            raise ConfigError(f"method {self.name!r}: command template cannot be split: {exc}") from None
        cwd = fill(self.cwd_template, values) if self.cwd_template else (str(self.repo) if self.repo else None)
        env = {**os.environ, **{k: fill(str(v), values) for k, v in self.env_templates.items()}}
        shown = shlex.join(args)
        with open(log_path, "wb") as log:
            log.write(f"$ {shown}\n# cwd: {cwd or os.getcwd()}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    args,
                    cwd=cwd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ExternalMethodError(
                    f"method {self.name!r}: cannot start `{shown}`: {exc}. Log: {log_path}"
                ) from None
            try:
                code = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise ExternalMethodError(
                    f"method {self.name!r}: `{shown}` timed out after {self.timeout:g} s and was killed. "
                    f"Log: {log_path}{_log_tail(log_path)}"
                ) from None
        if code != 0:
            raise ExternalMethodError(
                f"method {self.name!r}: `{shown}` exited with status {code}. Log: {log_path}{_log_tail(log_path)}"
            )

    def _read_output(self, out_dir: Path, sample_id: str, size: tuple[int, int], log_path: Path) -> np.ndarray:
        path = out_dir / fill(self.output_name, {"id": sample_id})
        if not path.is_file():
            present = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
            listing = (
                (
                    f"; {out_dir} holds {len(present)} file(s): {', '.join(present[:10])}"
                    + (" ..." if len(present) > 10 else "")
                )
                if out_dir.is_dir()
                else f"; {out_dir} does not exist"
            )
            raise ExternalMethodError(
                f"method {self.name!r}: `{self.command}` did not write the expected output {path}{listing}. "
                f"Check output_dir / output_name in the method YAML. Log: {log_path}{_log_tail(log_path)}"
            )
        try:
            with Image.open(path) as img:
                img.load()
                if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                    arr = np.asarray(img, dtype=np.float32) / 65535.0
                    arr = np.repeat(arr[..., None], 3, axis=2)
                else:
                    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        except OSError as exc:
            raise ExternalMethodError(
                f"method {self.name!r}: output {path} is not a readable image ({exc}). Log: {log_path}"
            ) from None
        if arr.shape[:2] != size:
            raise ExternalMethodError(
                f"method {self.name!r}: output {path} is {arr.shape[1]}x{arr.shape[0]} (WxH), expected "
                f"{size[1]}x{size[0]} (x{self.scale} of the input). Log: {log_path}"
            )
        return arr

    def __repr__(self) -> str:
        return f"ExternalCommand(name={self.name!r}, x{self.scale}, command={self.command!r}, repo={self.repo})"


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the command and everything it started (it runs in its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
