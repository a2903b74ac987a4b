"""``loss_val_speech_only``: one validation loss on which every speech LM can be compared.

``loss_val`` of an interleaved run averages over text, interleaved and speech documents, and
``loss_val`` of a textless run over speech documents only, so the two columns measure different
token mixtures. This column scores both on the same tokens: the speech-only documents of the
validation split (each utterance's deduplicated units, then end-of-sequence, as the prepared speech
stream holds them, in corpus order; :meth:`scaling.data.PreparedData.speech_val_windows`), packed
into windows of the run's ``data.context`` and averaged over the **unit targets** (end-of-sequence
targets are left out). The unit sequence is identical in every vocabulary (only the ids are
shifted by the vocabulary's unit offset), so every run of a corpus and context is validated on the
same units at the same positions, whatever its mode.

Sources named in ``data.val_exclude`` are left out, as for ``loss_val``. Text-only runs (no
speech stream) get no column.
"""

from __future__ import annotations

import numpy as np
import torch

from scaling.data import SPEECH

#: windows per forward pass
MICRO_BATCH = 16


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
    windows of ``prep`` (a :class:`scaling.data.PreparedData`), leaving out
    ``data_spec.val_exclude``; at most ``limit`` windows. Empty where there are no such windows
    (text mode, no speech source left). The model is scored in eval mode and left in the mode it
    was in."""
    ids, mod = prep.speech_val_windows(tuple(data_spec.val_exclude), limit)
    keep = unit_targets(ids, mod, prep.eos_id)
    if not keep.any():
        return {}
    was_training = model.training
    model.eval()
    loss = mean_target_nll(model, ids, keep, device, autocast)
    model.train(was_training)
    return {"loss_val_speech_only": loss}
