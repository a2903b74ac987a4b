"""The store is a jail: names taken from user text never lead a write outside the store root, nor
onto another file of the store."""

from __future__ import annotations

import hashlib
import os

import pytest

from scaling.errors import UserError, safe_name
from scaling.store import Store
from tests.helpers import scaling, write_sweep

HOSTILE = ["../evil", "../../outside/evil", "/tmp/evil", "a/b", ".hidden", "..", "", "x" * 129, "runs/../../x",
           "name\nwith-newline", "ok\x00nul"]


def _tree(root):
    """Every file under ``root`` with a hash of its contents (to show nothing changed)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.mark.parametrize("name", HOSTILE)
def test_unsafe_names_are_refused(name):
    with pytest.raises(UserError, match="not a safe name"):
        safe_name(name, "sweep name")


def test_safe_names_pass():
    for name in ("demo", "sims_paper", "run-1.5e+3", "A9"):
        assert safe_name(name, "sweep name") == name


def test_store_refuses_hostile_run_ids_and_sweep_names(tmp_path):
    store = Store(tmp_path / "store")
    for name in HOSTILE:
        with pytest.raises(UserError):
            store.run(name)
        with pytest.raises(UserError):
            store.record_sweep(name, [], "x")
    assert not (tmp_path / "evil.json").exists() and not (tmp_path / "outside").exists()


@pytest.mark.parametrize("name", ["../../escaped", "../runs/abc/status"])
def test_a_hostile_sweep_name_writes_nothing_anywhere(tmp_path, name):
    root = tmp_path / "jail"
    store = root / "store"
    store.mkdir(parents=True)
    sweep = write_sweep(root / "s.yaml", store, name=name)
    (store / "keep.txt").write_text("stored before")
    before = _tree(tmp_path)
    for command in (["plan", str(sweep)], ["launch", str(sweep), "--executor", "local"], ["status", str(sweep)]):
        proc = scaling(*command)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "not a safe name" in lines[0] and "Traceback" not in proc.stderr
    assert _tree(tmp_path) == before
