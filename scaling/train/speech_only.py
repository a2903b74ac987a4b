"""``loss_val_speech_only``: one validation loss on which every speech LM can be compared.

``loss_val`` of an interleaved run averages over text, interleaved and speech documents, and
``loss_val`` of a textless run over speech documents only, so the two columns measure different
token mixtures. This column scores both on the same tokens: the speech-only documents of the
validation split (each utterance's deduplicated units, then end-of-sequence, as the speech stream
writes them), in a fixed order that depends on neither the run nor its vocabulary, packed into
windows of the run's ``data.context`` and averaged over the **unit targets** (end-of-sequence
targets are left out). The unit sequence is identical in every vocabulary (only the ids are
shifted by the vocabulary's unit offset), so every run of a corpus and context is validated on
the same units at the same positions, whatever its mode.

Sources named in ``data.val_exclude`` are left out, as for ``loss_val``. Text-only runs (no
speech corpus) get no column.
"""

from __future__ import annotations

import numpy as np
import torch

from scaling.data import PAD, SPEECH
from scaling.data.packing import concat, windows_of
from scaling.data.streams import speech_stream

#: seed of the fixed utterance order (the same for every run, so every run scores the same units)
ORDER_SEED = 4321
#: windows per forward pass
MICRO_BATCH = 16


def speech_only_windows(unit_sequences: list[np.ndarray], unit_offset: int, eos_id: int, pad_id: int, context: int,
                        limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validation windows [M, context+1] (ids int64, modality int8) of speech-only documents.

    ``unit_sequences``: each utterance's unit ids (0-based, before the vocabulary's offset), in
    the corpus' order; they are put in a fixed pseudo-random order (:data:`ORDER_SEED`), written
    as ``units + unit_offset`` then ``eos_id`` (modality SPEECH), concatenated and cut into
    windows as :func:`scaling.data.packing.windows_of` does (the tail padded with ``pad_id`` /
    PAD). ``limit``: keep the first ``limit`` windows.
    """
    order = np.random.default_rng(ORDER_SEED).permutation(len(unit_sequences))
    stream = speech_stream([np.asarray(unit_sequences[i], dtype=np.int64) + unit_offset for i in order], eos_id)
    ids, mod = windows_of(concat(stream.document(i, 0) for i in range(len(stream))), context, pad_id, PAD)
    return (ids, mod) if limit is None else (ids[:limit], mod[:limit])


def unit_targets(ids: np.ndarray, mod: np.ndarray, eos_id: int) -> np.ndarray:
    """Mask [M, context] of the targets (``ids[:, 1:]``) that are speech units: SPEECH modality, not end-of-sequence."""
    return (mod[:, 1:] == SPEECH) & (ids[:, 1:] != eos_id)


@torch.no_grad()
def mean_target_nll(model: torch.nn.Module, ids: np.ndarray, keep: np.ndarray, device: torch.device,
                    autocast: bool = False) -> float:
    """Mean next-token negative log-likelihood (nats) of ``model`` over the targets ``ids[:, 1:]``
    where ``keep`` is true; the model reads ``ids[:, :-1]``. Logits are cast to float32 before
    the softmax; ``autocast``: run the forward pass in bfloat16 (GPU)."""
    total, count = 0.0, int(keep.sum())
    if count == 0:
        return float("nan")
    for s in range(0, len(ids), MICRO_BATCH):
        x = torch.from_numpy(np.ascontiguousarray(ids[s:s + MICRO_BATCH, :-1])).to(device)
        y = torch.from_numpy(np.ascontiguousarray(ids[s:s + MICRO_BATCH, 1:])).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=x).logits
        nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), y, reduction="none").cpu().numpy()
        total += float(nll[keep[s:s + MICRO_BATCH]].sum())
    return total / count


def speech_only_loss(model: torch.nn.Module, prep, data_spec, limit: int, device: torch.device,
                     autocast: bool = False) -> dict[str, float]:
    """``{"loss_val_speech_only": mean nll per unit}`` of ``model`` on the speech-only validation
    windows of ``prep`` (a :class:`scaling.data.PreparedData`: its corpus, vocabulary layout and
    context), leaving out ``data_spec.val_exclude``; at most ``limit`` windows. Empty for runs
    without a speech corpus or without validation utterances. The model is scored in eval mode
    and left in the mode it was in."""
    if prep.corpus is None:
        return {}
    records = prep.corpus.select("val", exclude_sources=data_spec.val_exclude)
    if not records:
        return {}
    layout = prep.vocab.layout
    ids, mod = speech_only_windows([prep.corpus.units(r) for r in records], layout.unit_offset, layout.eos_id,
                                   layout.pad_id, prep.context, limit)
    was_training = model.training
    model.eval()
    loss = mean_target_nll(model, ids, unit_targets(ids, mod, layout.eos_id), device, autocast)
    model.train(was_training)
    return {"loss_val_speech_only": loss}
