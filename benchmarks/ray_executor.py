"""``--executor ray``: fan the (data set, method, degradation) jobs out to a Ray cluster.

Each job runs ``benchmarks.runner.run_job`` on a worker and writes into the same run cache as the
in-process executor; the rows come back to the driver, which writes results.csv exactly as the
local executor does. Jobs are spread over the nodes (``SPREAD``); the node of every job is logged
and counted on stderr.

A cluster beyond one machine needs (README, "Running on a Ray cluster"): the run folder (``--out``,
which holds the cache) on a filesystem every node mounts at the same path, the same weights directory
(``--weights-dir`` / ``IRSR_WEIGHTS_DIR``) and data directory on every node, and this project installed
at the same version on every node. ``--ray-address ray://HOST:10001`` connects through the Ray client
(the ``ray`` extra installs it); ``HOST:6379`` joins as a driver on a cluster node. Ray replaces a
loopback node address (``127.0.0.1``) by the machine's interface address in every component, so
address a one-machine cluster by the "Local node IP" that ``ray start --head`` prints.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from typing import Any

from benchmarks.job.context import Settings
from benchmarks.resources import Resources
from benchmarks.runner import run_job
from sr.errors import UserError

log = logging.getLogger("benchmarks.ray_executor")


def _job_on_node(dataset: str, method: str, settings: Settings, degradation: str) -> tuple[str, list[dict[str, Any]]]:
    """``run_job`` on a Ray worker, with a ``Resources`` of its own (objects are not shipped between processes);
    returns the id of the node it ran on with the rows."""
    import ray

    resources = Resources.for_settings(settings)
    return ray.get_runtime_context().get_node_id(), run_job(dataset, method, settings, resources, degradation)


def _init(ray, address: str | None) -> None:
    if address and address.startswith("ray://"):
        # no runtime_env: through the client it needs the runtime-env agent and hung the connection
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}},
        )


def run_jobs_on_ray(
    jobs: list[tuple[str, str, str]], settings: Settings, address: str | None = None, num_cpus_per_job: float = 1.0
) -> list[list[dict[str, Any]]]:
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install -e '.[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            _init(ray, address)
        except ConnectionError as exc:
            raise UserError(f"--ray-address {address}: cannot connect to the Ray cluster ({exc})") from None
    try:
        remote_job = ray.remote(num_cpus=num_cpus_per_job, scheduling_strategy="SPREAD")(_job_on_node)
        quiet = Settings(**{**settings.__dict__, "progress": False})
        done = ray.get(
            [remote_job.remote(dataset, method, quiet, degradation) for dataset, method, degradation in jobs]
        )
    finally:
        if started_here:
            ray.shutdown()
    for (dataset, method, degradation), (node, _) in zip(jobs, done, strict=True):
        log.info("job %s / %s / %s ran on node %s", dataset, method, degradation, node)
    nodes = Counter(node for node, _ in done)
    if settings.progress:
        print(f"ray: {len(jobs)} jobs on {len(nodes)} node(s)", file=sys.stderr)
    return [rows for _, rows in done]
