"""Executors that train the runs of a sweep, behind one protocol (:mod:`scaling.launch.protocol`):
``local`` (child processes of this command) and ``slurm`` (job arrays through Submitit), registered
by name in :mod:`scaling.launch.executors`. The SLURM executor's parts: settings and per-run
requests (:mod:`~scaling.launch.resources`), the SLURM commands (:mod:`~scaling.launch.scheduler`),
the job manifest (:mod:`~scaling.launch.manifest`), code snapshots (:mod:`~scaling.launch.snapshot`)
and what a job runs (:mod:`~scaling.launch.slurm_job`)."""
