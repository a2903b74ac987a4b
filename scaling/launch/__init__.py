"""Executors that train the runs of a sweep: local processes, or SLURM through Submitit."""
