"""loss_val_speech_only: the same speech-only validation units for every mode, scored on unit targets only."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from scaling.data import PAD, SPEECH, prepare_data
from scaling.models import resolve_model
from scaling.models.build import build_model
from scaling.spec import DataSpec, ModelSpec, RunSpec, TrainSpec
from scaling.store import Store
from scaling.train.loop import Trainer
from scaling.train.speech_only import speech_only_targets, unit_targets
from tests.helpers import link_cache


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "data-cache"  # shared by the data test modules


@pytest.fixture(autouse=True)
def one_thread():
    """In-process forward passes on one thread, whatever the machine's load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _prep(cache, mode: str):
    return prepare_data(DataSpec(mode=mode, corpus="tiny", context=16), cache, seed=0, progress=False)


def test_unit_targets_leave_out_eos_and_padding():
    """Only SPEECH targets that are not end-of-sequence count; the window's first token is context only."""
    ids = np.array([[10, 11, 99, 12, 98]])
    mod = np.array([[SPEECH, SPEECH, SPEECH, SPEECH, PAD]])
    assert unit_targets(ids, mod, eos_id=99).tolist() == [[True, False, True, False]]


def test_interleaved_and_textless_runs_score_the_same_units(cache):
    """The same unit at the same position of the same window in both vocabularies (ids differ by
    the offset): the val split's speech documents, units then eos, in corpus order."""
    windows = {}
    for mode in ("interleaved", "speech"):
        prep = _prep(cache, mode)
        lay = prep.vocab.layout
        ids, mod = prep.speech_val_windows()
        keep = unit_targets(ids, mod, lay.eos_id)
        windows[mode] = (keep, np.where(keep, ids[:, 1:] - lay.unit_offset, -1))
        records = prep.corpus.select("val")
        expected = np.concatenate([np.append(prep.corpus.units(r), -1) for r in records])  # -1 stands for eos
        stream = np.concatenate([ids[0]] + [w[1:] for w in ids[1:]])
        stream = stream[stream != prep.pad_id]
        assert np.array_equal(np.where(stream == lay.eos_id, -1, stream - lay.unit_offset), expected)
    (keep_i, units_i), (keep_s, units_s) = windows["interleaved"], windows["speech"]
    assert keep_i.sum() > 0
    assert np.array_equal(keep_i, keep_s) and np.array_equal(units_i, units_s)


def _hand_mean_nll(model, ids: np.ndarray, keep: np.ndarray) -> float:
    """Mean NLL over the kept targets, one window at a time, log-softmax and gather by hand (float64)."""
    total = 0.0
    with torch.no_grad():
        for window, mask in zip(ids, keep):
            logp = torch.log_softmax(model(input_ids=torch.from_numpy(window[None, :-1])).logits[0].double(), -1)
            total -= float(logp[torch.arange(len(window) - 1), torch.from_numpy(window[1:])][torch.from_numpy(mask)].sum())
    return total / keep.sum()


def test_every_speech_run_reports_the_column_and_text_runs_do_not(tmp_path, cache):
    link_cache(tmp_path / "store", cache)
    store = Store(tmp_path / "store")
    rows = {}
    for mode in ("interleaved", "speech", "text"):
        spec = RunSpec(model=resolve_model(ModelSpec(size="20k")), data=DataSpec(mode=mode, corpus="tiny", context=16),
                       train=TrainSpec(tokens=2 * 8 * 16, batch_size=8, eval_points=1, val_windows=4)).validate()
        prep = prepare_data(spec.data, store.cache, seed=0, progress=False)
        model = build_model(spec.model, prep.vocab_size, spec.data.context, seed=0, pad_id=prep.pad_id)
        trainer = Trainer(spec=spec, run=store.register(spec), prep=prep, model=model)
        assert trainer.train_to_budget() == "done"
        rows[mode] = trainer.run.evals()[-1]
        if mode != "text":  # the unit targets of at most val_windows windows, scored in eval mode; training mode is restored
            ids, mod = prep.speech_val_windows(limit=4)
            expected = _hand_mean_nll(model.eval(), ids, unit_targets(ids, mod, prep.eos_id))
            # float32 logits, the chunked loss and a hand float64 log-softmax over ~50 targets: ~1e-6 relative
            assert rows[mode]["loss_val_speech_only"] == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(rows["interleaved"]["loss_val_speech_only"]) and np.isfinite(rows["speech"]["loss_val_speech_only"])
    assert "loss_val_speech_only" not in rows["text"]


def test_excluded_sources_leave_no_speech_only_windows(cache):
    prep = _prep(cache, "speech")
    assert speech_only_targets(prep, ("espeak",), 4) is None
    inputs, labels, (keep,) = speech_only_targets(prep, (), 4)
    assert len(inputs) == 4 and ((labels != -100).numpy() == keep).all()
