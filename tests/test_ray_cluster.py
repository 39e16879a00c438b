"""``--executor ray --ray-address ray://...`` against a real two-node Ray cluster on this machine (a head
and a worker node started with ``ray start --node-ip-address 127.0.0.1``, token authentication, torn
down afterwards): the jobs run on both nodes and results.csv equals the in-process run's. Ray rewrites
the loopback address to the machine's interface address, so the client connects to the node IP the
head reports."""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.run import main as run_main

REPO = Path(__file__).resolve().parents[1]
ARGS = [
    "--methods",
    "bicubic,nearest,lanczos",
    "--tasks",
    "quality",
    "--metrics",
    "psnr,ssim",
    "--limit",
    "2",
    "--quiet",
    "--no-report",
    "--device",
    "cpu",
]
START_TIMEOUT = 180  # seconds for a node to come up on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``ray start --block ...`` in its own process group (killed as a group at the end)."""
    with open(log, "w") as fh:
        return subprocess.Popen(
            [
                "ray",
                "start",
                "--block",
                "--node-ip-address",
                "127.0.0.1",
                "--num-cpus",
                "1",
                "--object-store-memory",
                str(80 << 20),
                "--disable-usage-stats",
                *args,
            ],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen) -> None:
    """Kill the node's process group (``ray start --block`` and every process it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def _wait_for_nodes(address: str, n: int, env: dict[str, str], procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a ray node exited while starting")
        out = subprocess.run(
            ["ray", "status", "--address", address], env=env, capture_output=True, text=True, check=False, timeout=60
        )
        if out.returncode == 0 and out.stdout.count("node_") >= n:
            return
        time.sleep(2)
    raise TimeoutError(f"{n} ray nodes not up within {START_TIMEOUT} s")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_benchmark_on_a_two_node_loopback_cluster(tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("grpc")  # the Ray client (ray[client])
    if shutil.which("ray") is None:
        pytest.skip("the ray command is not installed")
    token = secrets.token_hex(32)
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    gcs, client = _free_port(), _free_port()
    base = random.randrange(30000, 59000, 200)
    temp = Path(tempfile.mkdtemp(prefix="ray_", dir="/tmp"))  # short: ray's socket paths have a length limit
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            _start(
                [
                    "--head",
                    "--port",
                    str(gcs),
                    "--ray-client-server-port",
                    str(client),
                    "--include-dashboard",
                    "false",
                    "--dashboard-agent-listen-port",
                    str(_free_port()),
                    "--min-worker-port",
                    str(base),
                    "--max-worker-port",
                    str(base + 99),
                    "--temp-dir",
                    str(temp),
                ],
                env,
                tmp_path / "head.log",
            )
        )
        _wait_for_nodes(f"127.0.0.1:{gcs}", 1, env, procs)
        procs.append(
            _start(
                [
                    "--address",
                    f"127.0.0.1:{gcs}",
                    "--dashboard-agent-listen-port",
                    str(_free_port()),
                    "--min-worker-port",
                    str(base + 100),
                    "--max-worker-port",
                    str(base + 199),
                ],
                env,
                tmp_path / "worker.log",
            )
        )
        _wait_for_nodes(f"127.0.0.1:{gcs}", 2, env, procs)
        host = re.search(r"Local node IP: (\S+)", (tmp_path / "head.log").read_text()).group(1)

        assert run_main([*ARGS, "--out", str(tmp_path / "local")]) == 0
        # the driver is its own process, as a user runs it: ray reads RAY_AUTH_MODE once, when it is imported
        driver = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.run",
                *[a for a in ARGS if a != "--quiet"],  # not quiet: it prints how many nodes ran the jobs
                "--out",
                str(tmp_path / "ray"),
                "--executor",
                "ray",
                "--ray-address",
                f"ray://{host}:{client}",
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert driver.returncode == 0, driver.stderr[-3000:]
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
    assert "ray: 3 jobs on 2 node(s)" in driver.stderr, driver.stderr[-3000:]  # spread over head and worker
    local = pd.read_csv(tmp_path / "local" / "results.csv")
    remote = pd.read_csv(tmp_path / "ray" / "results.csv")
    pd.testing.assert_frame_equal(local, remote)
    assert len(local) == 6
