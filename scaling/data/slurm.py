"""``scaling data build CONFIG --executor slurm``: one SLURM array task per shard, through Submitit.

Each task builds one shard of one source (its units, then its token shards for every requested
vocabulary) exactly as a local build would (:func:`scaling.data.build.build_shard`), so it is
resumable the same way: finished shards are found in the cache and skipped, and a task killed at
any moment leaves no shard that looks complete. When the array has finished, the same
``scaling data build`` command, run again, finds every shard built and writes the manifests.
The cache must be on a file system the compute nodes share.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from scaling.errors import UserError


def build_shards(jobs: list) -> list[str]:
    """The SLURM task: build the shards of ``jobs`` (one shard, several vocabularies) in order."""
    from scaling.data.build import build_shard

    return [build_shard(job) for job in jobs]


def submit_shards(tasks: list[list], folder: Path, partition: str | None = None, account: str | None = None,
                  time_min: int = 240, cpus_per_task: int = 8, gpus_per_task: int = 0, mem_gb: int = 32,
                  array_parallelism: int = 64) -> str:
    """Submit one array task per entry of ``tasks`` (a list of ShardJobs each); returns the array's
    job id. Logs go to ``folder``."""
    import submitit

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    executor = submitit.SlurmExecutor(folder=folder / "%j")
    additional = {k: v for k, v in (("partition", partition), ("account", account)) if v}
    if gpus_per_task:
        additional["gpus-per-task"] = gpus_per_task
    executor.update_parameters(job_name="scaling-data", time=time_min, cpus_per_task=cpus_per_task, mem=f"{mem_gb}G",
                               array_parallelism=array_parallelism, setup=["export HF_HUB_OFFLINE=1"],
                               additional_parameters=additional)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            jobs = executor.map_array(build_shards, tasks)
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as exc:
        raise UserError(f"sbatch failed: {' '.join(str(exc).split()) or type(exc).__name__}; expected a reachable SLURM controller") from None
    return jobs[0].job_id.split("_")[0]
