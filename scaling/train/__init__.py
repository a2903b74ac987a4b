"""Training: token-budget runs of transformers causal LMs, with exact resume and data parallelism."""
