"""scaling: scaling-law studies of speech-text language models.

Sweep file -> run specs -> run layer -> executor -> training -> results store -> results table ->
fitted laws with uncertainty -> paper figures (README.md and DESIGN.md draw it). The packages, in
layers that only import downwards (``tests/test_layers.py`` checks it):

- ``errors`` (errors meant for people), under the foundations: ``formatting`` (numbers and rows
  for people), ``atomic`` (the one way a file is written), ``reading`` (files others wrote: one
  line for anything unreadable, and nothing that can run code);
- ``spec`` (what a run is: frozen, hashed specs) and ``results_table`` (what the table's columns
  mean: the one reader and writer);
- ``store`` (one directory per run), ``models`` (families and sizes), ``data`` (corpora into
  token windows; :func:`scaling.data.prepare_data` is its one entry point);
- ``runs``: the run layer (dependency graph, timeline, vocabulary, costs, materialise, outcome);
- ``sweep`` (grids of runs), ``collect`` (store into table), ``fit`` (laws), ``evaluation``
  (benchmarks);
- ``train`` (one run to its budget), ``figures`` (a table and its fits drawn);
- ``launch`` (executors: local and SLURM, behind one protocol);
- ``commands`` and ``cli`` (every subcommand).
"""

__version__ = "0.1.0"
