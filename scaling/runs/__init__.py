"""The run layer: what the toolkit knows about one run, between its spec and the executors.

A run is a pure function of its :class:`~scaling.spec.RunSpec`. This package answers every
question about a run that more than one part of the toolkit asks, once:

- :mod:`~scaling.runs.graph`: the runs a run depends on (its pre-trained text LM), the order to
  train them in, and where their results are in the store;
- :mod:`~scaling.runs.timeline`: the steps of a token budget, its evaluation points and decay branches;
- :mod:`~scaling.runs.vocabulary`: the vocabulary a run will have, known before any data is built;
- :mod:`~scaling.runs.costs`: parameters, tokens, FLOPs and memory per task under a parallel
  strategy (the one memory model that ``plan``, the SLURM request and training share);
- :mod:`~scaling.runs.materialise`: a run's data, tokenizer and initial model, built exactly as
  training builds them (also for evaluation, tests and benchmarks);
- :mod:`~scaling.runs.outcome`: how one attempt to train a run ended, and its exit status.

Executors (:mod:`scaling.launch`) and training (:mod:`scaling.train`) build on this layer; it
imports neither. Nothing here imports torch at import time.
"""
