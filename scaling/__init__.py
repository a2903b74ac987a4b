"""scaling: scaling-law studies of speech-text language models.

Sweep file -> run specs -> training (local or SLURM) -> results store -> results table ->
fitted laws with uncertainty -> paper figures. See README.md and DESIGN.md.
"""

__version__ = "0.1.0"
