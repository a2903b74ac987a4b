"""Validation losses of a model on a run's validation windows (the ``loss_val*`` columns).

Mean next-token loss in nats per target token over the first ``train.val_windows`` validation
windows, leaving out the sources named in ``data.val_exclude``: over every target, and over the
speech and text targets separately (each only when there are some); and ``loss_val_speech_only``,
the loss on the speech-only validation units every speech LM shares (:mod:`scaling.train.speech_only`).

Every rank takes part: the windows are split over the ranks as a training batch is
(:func:`~scaling.train.distributed.rank_rows`), each rank runs its share through the training
module (:class:`~scaling.train.loss.TokenLoss`, so no full-vocabulary logits) in micro-batches of
the training micro-batch, and the sums are added over the ranks. No rank waits for another's
evaluation, and under fsdp every rank's shards take part in every forward pass. Peak memory is at
most a training step's: no gradients are kept, and the micro-batch and the loss chunk are the
training ones.
"""

from __future__ import annotations

import torch

from scaling.data import PAD, SPEECH, TEXT
from scaling.spec import RunSpec
from scaling.train.batches import make_labels
from scaling.train.distributed import World, rank_rows
from scaling.train.speech_only import speech_only_targets

KINDS = ("all", "speech", "text")


@torch.no_grad()
def validation_losses(forward: torch.nn.Module, prep, spec: RunSpec, device: torch.device, autocast: bool, world: World,
                      micro_batch: int) -> dict[str, float]:
    """``loss_val`` (all targets), ``loss_val_speech``, ``loss_val_text`` and ``loss_val_speech_only``
    of the training module ``forward`` (left in train mode), on every rank alike."""
    forward.eval()
    ids, mod = prep.val_windows(spec.data.val_exclude, limit=spec.train.val_windows)
    inputs, labels, target_mod = make_labels(ids, mod, spec.data.marker_loss)
    sums, counts = _masked_sums(forward, inputs, labels, (target_mod != PAD, target_mod == SPEECH, target_mod == TEXT),
                                device, autocast, world, micro_batch)
    out = {"loss_val": sums[0] / max(1.0, counts[0])}
    for i, kind in enumerate(KINDS[1:], start=1):
        if counts[i]:
            out[f"loss_val_{kind}"] = sums[i] / counts[i]
    speech = speech_only_targets(prep, spec.data.val_exclude, spec.train.val_windows)
    if speech is not None:
        (total,), (count,) = _masked_sums(forward, *speech, device, autocast, world, micro_batch)
        out["loss_val_speech_only"] = total / count
    forward.train()
    return out


def _masked_sums(forward: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, masks, device: torch.device,
                 autocast: bool, world: World, micro_batch: int) -> tuple[list[float], list[float]]:
    """Sums of the per-target NLL of ``forward`` over the windows ``inputs`` / ``labels`` [M, T]
    within each boolean mask [M, T] of ``masks``, and the masks' counts, added over the ranks
    (each rank runs its share of the windows in passes of ``micro_batch``)."""
    lo, hi = rank_rows(len(inputs), world)
    totals = torch.zeros(2 * len(masks), dtype=torch.float64)  # sums, then counts
    starts = list(range(lo, hi, micro_batch))
    if world.size > 1 and not starts:  # every rank runs as many passes (fsdp gathers shards in each)
        starts = [lo]
    for start in starts:
        stop = min(hi, start + micro_batch)
        rows = slice(start, stop) if stop > start else slice(0, 1)  # a rank without windows runs one pass, unused
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            nll = forward(inputs[rows].to(device), labels[rows].to(device)).double().cpu().numpy()
        if stop <= start:
            continue
        for i, mask in enumerate(masks):
            sel = mask[rows]
            totals[i] += float(nll[sel].sum())
            totals[len(masks) + i] += int(sel.sum())
    if world.size > 1:
        totals = totals.to(device)
        torch.distributed.all_reduce(totals)
        totals = totals.cpu()
    return totals[:len(masks)].tolist(), totals[len(masks):].tolist()
