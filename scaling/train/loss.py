"""The next-token loss without full-vocabulary logits for a whole micro-batch.

:class:`TokenLoss` wraps a transformers causal LM: it runs the LM's trunk (``base_model``: blocks
and final norm) and then the output layer and cross-entropy over chunks of ``chunk_tokens``
positions (:func:`chunked_nll`). In training with more than one chunk each chunk is checkpointed:
its logits are recomputed in the backward pass, one chunk at a time, so at most one chunk's logits,
log-softmax and gradient exist at once (``chunk_tokens × vocabulary`` values; see
:func:`scaling.runs.costs.loss_chunk_tokens`), whatever the micro-batch. Logits are cast to fp32
before the log-softmax, so the loss is the fp32 loss of the full logits, position by position.

Being one module, it is also the unit the parallel wrappers see (DistributedDataParallel, or the
root of ``fully_shard``, whose gathered parameters — embeddings and output layer — are live while
its forward and backward run).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE = -100  # label of positions that carry no loss


def _nll(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
    logits = F.linear(hidden, weight, bias).float()
    return F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="none")


def chunked_nll(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, labels: torch.Tensor,
                chunk_tokens: int) -> torch.Tensor:
    """Negative log-likelihood in nats (fp32) of every position: ``hidden`` [n, d] through the output
    layer (``weight`` [V, d], ``bias``) against ``labels`` [n] (0 where the label is :data:`IGNORE`),
    ``chunk_tokens`` positions at a time; with gradients enabled and more than one chunk, each chunk
    is recomputed in the backward pass instead of keeping its logits. One chunk is not recomputed:
    its logits are then the one chunk's worth the bound allows, and recomputing them would only
    repeat the output layer (most of a step for a small model with a large vocabulary)."""
    recompute = torch.is_grad_enabled() and hidden.shape[0] > chunk_tokens
    pieces = []
    for start in range(0, hidden.shape[0], chunk_tokens):
        args = (hidden[start:start + chunk_tokens], weight, bias, labels[start:start + chunk_tokens])
        pieces.append(checkpoint(_nll, *args, use_reentrant=False) if recompute else _nll(*args))
    return torch.cat(pieces)


class TokenLoss(torch.nn.Module):
    """A causal LM (``lm``) whose forward returns per-position losses (see the module docstring)."""

    def __init__(self, lm: torch.nn.Module, chunk_tokens: int):
        super().__init__()
        self.lm = lm
        self.chunk_tokens = chunk_tokens

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """NLL in nats of each position of ``input_ids`` [m, T] against ``labels`` [m, T], as [m, T] (fp32)."""
        hidden = self.lm.base_model(input_ids=input_ids, use_cache=False).last_hidden_state
        out = self.lm.get_output_embeddings()
        nll = chunked_nll(hidden.reshape(-1, hidden.shape[-1]), out.weight, out.bias, labels.reshape(-1), self.chunk_tokens)
        return nll.view(labels.shape)
