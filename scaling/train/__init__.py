"""Training one run: token-budget runs of transformers causal LMs, with exact resume and data parallelism.

:func:`scaling.train.entry.train_run` is what every executor calls; it materialises the run
(:mod:`scaling.runs.materialise`) and drives the :class:`~scaling.train.loop.Trainer`, whose parts
have one job each: :mod:`~scaling.train.parallel` (optimizer, DDP, ZeRO-1, micro-batch),
:mod:`~scaling.train.state` (trunk and branch, save and resume), :mod:`~scaling.train.metrics`
(rows and logs), :mod:`~scaling.train.validation`, :mod:`~scaling.train.batches`,
:mod:`~scaling.train.schedule` (learning rates), :mod:`~scaling.train.mirrors` (TensorBoard, W&B)
and :mod:`~scaling.train.signals` (the stop flag).
"""
