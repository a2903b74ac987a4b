"""How the runs of a store are evaluated at checkpoints: ``<store>/eval.yaml`` (optional).

Every key is optional; unknown keys are errors that list the valid ones::

    pairs: 64                   # pairs per set at each evaluation point (the first pairs, whole blocks)
    sets: [stc, ssc, ms_stc, ms_ssc, sblimp, swuggy]   # offline sets
    cross_modal: true           # S→T, T→S, T→T and the text-LM reference, at final points, for interleaved models
    mask_other_modality: false  # softmax over the target's modality only
    score: sequence             # sequence (prompt and continuation, as SIMS) or continuation
    official:                   # local copies of official sets: column name → path
      zr_sblimp: /data/sLM21/syntactic/dev

The default of 64 pairs keeps the demo's evaluation cheap (its runs train on as few as 13k tokens);
its standard error near chance is about 0.06. For real studies raise it (up to 1000; the offline
StoryCloze-like sets have about 290 pairs on the default corpus); the cost of a set is about
pairs × 100 tokens of forward passes per evaluation point.

An official set named like an offline one (e.g. ``sblimp``) replaces it in that column for every
run of the store. Settings change only the metrics, never training, so they are not part of run
ids; a store's ``eval.yaml`` should stay fixed while its sweep runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from scaling.errors import UserError
from scaling.reading import read_text
from scaling.evaluation.offline import OFFLINE_SETS
from scaling.evaluation.tokens import SCORES

FILE = "eval.yaml"


@dataclass(frozen=True)
class EvalSettings:
    """Evaluation settings of a store (see the module doc)."""

    pairs: int = 64
    sets: tuple[str, ...] = tuple(OFFLINE_SETS)
    cross_modal: bool = True
    mask_other_modality: bool = False
    score: str = "sequence"
    official: dict = field(default_factory=dict)


def load_settings(path: Path) -> EvalSettings:
    """Settings from an ``eval.yaml`` file, or a store root that may hold one (defaults if absent)."""
    import yaml

    from scaling.spec import from_dict

    path = Path(path)
    path = path / FILE if path.is_dir() else path
    if not path.is_file():
        return EvalSettings()
    try:
        data = yaml.safe_load(read_text(path, "evaluation settings")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    settings = from_dict(EvalSettings, data, "eval")
    if settings.pairs < 1:
        raise UserError(f"{path}: pairs = {settings.pairs}; expected a positive number of pairs per set")
    unknown = [s for s in settings.sets if s not in OFFLINE_SETS]
    if unknown:
        raise UserError(f"{path}: unknown set {unknown[0]!r} in sets; expected some of {', '.join(OFFLINE_SETS)} (official sets go under official)")
    if settings.score not in SCORES:
        raise UserError(f"{path}: score = {settings.score!r}; expected one of {', '.join(SCORES)}")
    if not isinstance(settings.official, dict):
        raise UserError(f"{path}: official must map column names to local paths")
    for name, where in settings.official.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
            raise UserError(f"{path}: official set name {name!r}; expected lowercase letters, digits and '_' (it names the column acc_<name>)")
        if not Path(str(where)).expanduser().exists():
            raise UserError(f"{path}: official set {name!r} path {str(where)!r} does not exist; nothing is downloaded, expected a local copy")
    return settings
