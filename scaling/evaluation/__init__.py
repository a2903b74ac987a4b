"""Evaluation engine: zero-shot pairwise benchmarks (offline tSC/sSC/sBLIMP/sWUGGY-like sets, their
multi-speaker variants, cross-modal StoryCloze, official sets from local paths), scored at every
evaluation point of a run (:mod:`scaling.evaluation.hooks`) and by ``scaling eval``
(:mod:`scaling.commands.evaluate`). See ``README.md`` in this directory for what each set
measures and how it differs from the official one. Importing this package loads no torch.
"""
