"""Files from others cannot run code: a checkpoint or a model directory that carries a pickle payload
is refused with one line naming the file, and the payload never runs (it would create a file)."""

from __future__ import annotations

import pickle
import random
import shutil

import numpy as np
import pytest
import torch

from scaling.cli import main
from scaling.errors import UserError
from scaling.reading import UnsafeFile, load_tensors
from scaling.store import Store
from scaling.sweep import load_sweep
from scaling.train.checkpoint import load_checkpoint, save_checkpoint
from scaling.train.entry import train_run
from tests.helpers import link_cache, write_sweep


class Payload:
    """Unpickling this object opens ``marker`` for writing, creating it: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, monkeypatch_module):
    """A store with one finished tiny run (exported model, checkpoint) and its sweep file."""
    root = tmp_path_factory.mktemp("safe")
    store = root / "store"
    link_cache(store, tmp_path_factory.mktemp("cache"))
    sweep = write_sweep(root / "s.yaml", store, tokens=(512,))
    spec = load_sweep(sweep).runs[0]
    Store(store).register(spec)
    monkeypatch_module.setattr("scaling.train.entry._benchmark_hook", lambda: None)
    assert train_run(store, spec.run_id, threads=1) == "done"
    return root, Store(store).run(spec.run_id)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _payload_file(path, marker) -> None:
    """A checkpoint-like torch file with the payload inside, shown to be live: loading it the unsafe
    way does create ``marker`` (which is then removed)."""
    torch.save({"model": {}, "step": 3, "extra": Payload(marker)}, path)
    torch.load(path, weights_only=False)
    assert marker.exists(), "the payload is not live: the test would prove nothing"
    marker.unlink()


def test_a_pickle_payload_in_a_checkpoint_is_refused_without_running(trained, tmp_path, capsys):
    root, done = trained
    run_dir = tmp_path / "run"
    shutil.copytree(done.path, run_dir)
    marker = tmp_path / "PAYLOAD-RAN"
    checkpoint = run_dir / "checkpoint" / "latest.pt"
    _payload_file(checkpoint, marker)
    for target in (run_dir / "checkpoint", checkpoint):
        assert main(["eval", str(target), "--bench", "sblimp"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert str(checkpoint) in err and "holds objects other than tensors and plain data" in err
    with pytest.raises(UnsafeFile, match="latest.pt"):
        load_tensors(checkpoint)
    assert not marker.exists()


def test_a_run_resuming_from_a_payload_checkpoint_fails_naming_it(trained, tmp_path):
    """`scaling launch` resuming a run whose checkpoint carries a payload: the run fails with the
    file in its status, and the payload does not run."""
    root, done = trained
    store = Store(done.path.parents[1])
    spec = done.spec()
    other = Store(tmp_path / "store")
    link_cache(other.root, store.root / "cache")
    run = other.register(spec)
    run.checkpoint_dir.mkdir()
    marker = tmp_path / "PAYLOAD-RAN"
    _payload_file(run.checkpoint_dir / "latest.pt", marker)
    with pytest.raises(UserError, match="holds objects other than tensors"):
        train_run(other.root, spec.run_id, threads=1)
    assert run.status()["state"] == "failed" and str(run.checkpoint_dir / "latest.pt") in run.status()["error"]
    assert not marker.exists()


def test_a_model_directory_of_pickles_is_refused_unless_trusted(trained, tmp_path, capsys):
    root, done = trained
    model = tmp_path / "m"
    shutil.copytree(done.path / "model", model)
    from safetensors.torch import load_file

    state = load_file(model / "model.safetensors")
    (model / "model.safetensors").unlink()
    marker = tmp_path / "PAYLOAD-RAN"
    with open(model / "pytorch_model.bin", "wb") as f:  # a payload where the weights should be
        pickle.dump(Payload(marker), f)
    assert main(["eval", str(model), "--bench", "sblimp"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "holds its weights only as pickles (pytorch_model.bin)" in err
    assert "--trust-pickles" in err and not marker.exists()
    # trusted, the payload is still not run (transformers loads .bin with weights_only), but refused in one line
    assert main(["eval", str(model), "--bench", "sblimp", "--trust-pickles"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot be loaded" in err and not marker.exists()
    # trusted, real pickled weights load and score
    torch.save(state, model / "pytorch_model.bin")
    assert main(["eval", str(model), "--bench", "sblimp", "--corpus", "tiny", "--pairs", "2", "--trust-pickles"]) == 0
    assert "acc_sblimp_text" in capsys.readouterr().out


def test_a_sweep_initialised_from_a_pickle_model_fails_at_its_start(trained, tmp_path):
    """init_from a model directory whose weights are a pickle payload: the run fails naming the
    directory, and the payload does not run."""
    root, done = trained
    model = tmp_path / "lm"
    shutil.copytree(done.path / "model", model)
    (model / "model.safetensors").unlink()
    marker = tmp_path / "PAYLOAD-RAN"
    with open(model / "pytorch_model.bin", "wb") as f:
        pickle.dump(Payload(marker), f)
    store = tmp_path / "store"
    link_cache(store, done.path.parents[1] / "cache")
    sweep = write_sweep(tmp_path / "s.yaml", store, tokens=(512,), extra_base={"init": "text-lm", "init_from": str(model)})
    spec = load_sweep(sweep).runs[0]
    run = Store(store).register(spec)
    with pytest.raises(UnsafeFile, match="pytorch_model.bin"):
        train_run(store, spec.run_id, threads=1)
    assert run.status()["state"] == "failed" and "holds its weights only as pickles" in run.status()["error"]
    assert not marker.exists()


def test_checkpoints_hold_plain_data_and_restore_every_rng(tmp_path):
    """A checkpoint loads with torch's weights-only loader and nothing allowed beyond it, and
    brings the torch, numpy and Python RNGs back to where they were; a checkpoint written before
    checkpoints held plain data only (numpy's state as arrays) still loads."""
    np.random.seed(7), torch.manual_seed(7), random.seed(7)
    save_checkpoint(tmp_path, {"tensors": {"model.w": torch.ones(2)}, "step": 1})
    draws = (np.random.rand(3), torch.rand(3), random.random())
    state = torch.load(tmp_path / "latest.pt", weights_only=True)  # no safe globals added: plain data only
    assert isinstance(state["rng"]["numpy"]["state"]["key"], torch.Tensor)
    np.random.seed(1), torch.manual_seed(1), random.seed(1)
    load_checkpoint(tmp_path)
    again = (np.random.rand(3), torch.rand(3), random.random())
    assert np.array_equal(draws[0], again[0]) and torch.equal(draws[1], again[1]) and draws[2] == again[2]

    np.random.seed(3)
    torch.save({"tensors": {}, "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}},
               tmp_path / "latest.pt")
    expected = np.random.rand(3)
    np.random.seed(4)
    load_checkpoint(tmp_path)
    assert np.array_equal(np.random.rand(3), expected)
