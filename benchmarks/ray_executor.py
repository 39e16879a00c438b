"""``--executor ray``: fan the (data set, method) jobs out to a Ray cluster.

Each job runs ``benchmarks.runner.run_job`` on a worker and writes into the same run cache as the
in-process executor (the output directory must be on storage every worker sees); the rows come
back to the driver, which writes results.csv exactly as the local executor does.
"""
from __future__ import annotations

from typing import Any

from benchmarks.runner import Settings, run_job
from sr.errors import UserError


def run_jobs_on_ray(jobs: list[tuple[str, str]], settings: Settings, address: str | None = None,
                    num_cpus_per_job: float = 1.0) -> list[list[dict[str, Any]]]:
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install -e '.[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}})
    try:
        remote_job = ray.remote(num_cpus=num_cpus_per_job)(run_job)
        quiet = Settings(**{**settings.__dict__, "progress": False})
        return ray.get([remote_job.remote(dataset, method, quiet) for dataset, method in jobs])
    finally:
        if started_here:
            ray.shutdown()
