"""Validation losses of a model on a run's validation windows (the ``loss_val*`` columns).

Mean next-token loss in nats per target token over the first ``train.val_windows`` validation
windows, leaving out the sources named in ``data.val_exclude``: over every target, and over the
speech and text targets separately (each only when there are some); and ``loss_val_speech_only``,
the loss on the speech-only validation units every speech LM shares (:mod:`scaling.train.speech_only`).
"""

from __future__ import annotations

import torch

from scaling.data import PAD, SPEECH, TEXT
from scaling.spec import RunSpec
from scaling.train.batches import make_labels
from scaling.train.speech_only import speech_only_loss

WINDOWS_PER_PASS = 16


@torch.no_grad()
def validation_losses(model: torch.nn.Module, prep, spec: RunSpec, device: torch.device, autocast: bool) -> dict[str, float]:
    """``loss_val`` (all targets), ``loss_val_speech``, ``loss_val_text`` and ``loss_val_speech_only``
    of ``model`` (left in train mode)."""
    model.eval()
    ids, mod = prep.val_windows(spec.data.val_exclude, limit=spec.train.val_windows)
    inputs, labels, target_mod = make_labels(ids, mod, spec.data.marker_loss)
    sums = {"all": 0.0, "speech": 0.0, "text": 0.0}
    counts = {"all": 0, "speech": 0, "text": 0}
    mb = WINDOWS_PER_PASS
    for s in range(0, len(inputs), mb):
        x, y = inputs[s:s + mb].to(device), labels[s:s + mb].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=x).logits
        nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=-100, reduction="none").cpu().numpy()
        m = target_mod[s:s + mb]
        for key, sel in (("all", m != PAD), ("speech", m == SPEECH), ("text", m == TEXT)):
            sums[key] += float(nll[sel].sum())
            counts[key] += int(sel.sum())
    model.train()
    out = {"loss_val": sums["all"] / max(1, counts["all"])}
    if counts["speech"]:
        out["loss_val_speech"] = sums["speech"] / counts["speech"]
    if counts["text"]:
        out["loss_val_text"] = sums["text"] / counts["text"]
    out.update(speech_only_loss(model, prep, spec.data, spec.train.val_windows, device, autocast))
    return out
