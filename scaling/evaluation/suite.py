"""Which benchmarks a model is scored on, and running them: shared by training hooks and the CLI.

A :class:`Task` is one results-table column: a benchmark in one direction, scored by the model
itself or, for ``acc_<bench>_textlm``, by the text LM the model was initialised from. Which tasks
apply follows the model's vocabulary (SIMS' metrics per model kind):

* textless (unit-only) models: every offline set in speech (``acc_stc``, ``acc_ssc``,
  ``acc_ms_stc``, ``acc_ms_ssc``, ``acc_sblimp``, ``acc_swuggy``);
* interleaved models: the same, plus cross-modal StoryCloze on the multi-speaker sets (SIMS
  Table 2): ``acc_ms_{stc,ssc}_s2t``, ``_t2s``, ``_t2t``, and ``_textlm`` when a text LM is known;
* text models: the text of every set: ``acc_ms_stc_t2t``, ``acc_ms_ssc_t2t`` (the same text as
  ``stc`` / ``ssc``), ``acc_sblimp_text``, ``acc_swuggy_text``.

User-configured official sets are scored in speech when both the model and the set have it,
otherwise in text, under ``acc_<name>``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from scaling.atomic import atomic_write
from scaling.errors import UserError, unknown_choice
from scaling.evaluation.format import Benchmark
from scaling.evaluation.offline import OFFLINE_SETS, speech_benchmark, text_benchmark
from scaling.evaluation.official import read_official
from scaling.evaluation.tokens import DIRECTIONS, ModelVocab

CROSS_MODAL_DIRECTIONS = ("s2t", "t2s", "t2t")


@dataclass(frozen=True)
class Task:
    """One column: benchmark ``bench`` in ``direction``; ``text_lm``: scored by the initial text LM."""

    column: str
    bench: str
    direction: str
    text_lm: bool = False


def choose_tasks(vocab: ModelVocab, benches: "Benchmarks", offline: tuple[str, ...], official: Iterable[str] = (), *,
                 cross_modal: bool = True, text_lm: bool = False, directions: tuple[str, ...] | None = None) -> list[Task]:
    """Every task (column) a model with vocabulary ``vocab`` is scored on, for training's
    evaluation points and ``scaling eval`` alike: those of the ``offline`` sets
    (:func:`offline_tasks`), then those of each ``official`` set loaded by ``benches``
    (:func:`official_tasks`)."""
    tasks = offline_tasks(vocab, offline, cross_modal=cross_modal, text_lm=text_lm, directions=directions)
    for name in dict.fromkeys(official):
        tasks += official_tasks(name, benches.get(name), vocab, directions)
    return tasks


def offline_tasks(vocab: ModelVocab, sets: tuple[str, ...], *, cross_modal: bool = True, text_lm: bool = False,
                  directions: tuple[str, ...] | None = None) -> list[Task]:
    """The tasks of offline ``sets`` for a model with vocabulary ``vocab`` (see the module doc).

    ``cross_modal``: S→T, T→S and T→T of the StoryCloze sets for models that read both
    modalities; ``text_lm``: the text-LM reference (T→T scored by the initial text LM);
    ``directions``: keep only these (asking for ``t`` adds text scoring of unprompted sets to
    interleaved models). ``stc`` and ``ssc`` have the same text as ``ms_stc`` and ``ms_ssc``, so when
    both are asked for, text directions are scored once, under the multi-speaker name."""
    from scaling.evaluation.scoring import column_name

    for name in sets:
        if name not in OFFLINE_SETS:
            raise unknown_choice("offline benchmark", name, OFFLINE_SETS)
    tasks = []
    for name in sets:
        has_prompt = OFFLINE_SETS[name].builder in ("topic", "swap")
        text_elsewhere = f"ms_{name}" in sets
        candidates = []
        if has_prompt:
            candidates += ["s2s"] if vocab.speech else []
            if vocab.text and (cross_modal or not vocab.speech) and not text_elsewhere:
                candidates += [d for d in CROSS_MODAL_DIRECTIONS if vocab.supports(d)]
        else:
            candidates += ["s"] if vocab.speech else []
            if vocab.text and (not vocab.speech or (directions is not None and "t" in directions)):
                candidates.append("t")
        tasks += [Task(column_name(name, d), name, d) for d in candidates if directions is None or d in directions]
        if text_lm and has_prompt and not text_elsewhere and (directions is None or "t2t" in directions):
            tasks.append(Task(f"acc_{name}_textlm", name, "t2t", text_lm=True))
    return tasks


def official_tasks(name: str, bench: Benchmark, vocab: ModelVocab, directions: tuple[str, ...] | None = None) -> list[Task]:
    """The tasks of an official set: each of ``directions`` that fits the set and the model, or by
    default one: speech when both the set and the model have it, else text. UserError if none fits."""
    from scaling.evaluation.scoring import column_name

    forms = bench.modalities()
    if directions is None:
        speech = "speech" in forms and vocab.speech
        directions = (("s2s" if speech else "t2t") if bench.prompted else ("s" if speech else "t"),)
    fits = [d for d in directions if (DIRECTIONS[d][0] is not None) == bench.prompted and vocab.supports(d)
            and all(m is None or m in forms for m in DIRECTIONS[d])]
    if not fits:
        raise UserError(f"benchmark {name!r} ({bench.source}) offers {', '.join(sorted(forms)) or 'no common form'} "
                        f"{'with' if bench.prompted else 'without'} prompts; no direction of {', '.join(directions)} fits it "
                        f"and the model's {vocab.layout.kind} vocabulary")
    return [Task(column_name(name, d), name, d) for d in fits]


@dataclass
class Benchmarks:
    """Loads benchmarks by name, each once: offline sets of ``corpus_config`` (in speech when
    ``speech``, else text only, which needs no corpus) or official sets from ``official`` paths;
    cut to ``limit`` pairs. ``cache_root``: the store cache where corpora and speech builds live;
    ``corpus``: the built corpus if already open (a run's ``prep.corpus``)."""

    corpus_config: Any
    cache_root: Path
    speech: bool
    limit: int | None = None
    official: dict[str, str] = field(default_factory=dict)
    progress: bool = False
    corpus: Any = None
    _loaded: dict[str, Benchmark] = field(default_factory=dict)
    _units: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Benchmark:
        if name not in self._loaded:
            if name in self.official:
                bench = read_official(Path(self.official[name]), name).head(self.limit)
            elif self.corpus_config is None:
                raise UserError(f"offline benchmark {name!r} needs a corpus; name the corpus the model was trained on (--corpus)")
            elif self.speech:
                bench = speech_benchmark(name, self.corpus_config, self.cache_root, self.limit, self.progress, self._corpus())
            else:
                bench = text_benchmark(name, self.corpus_config, self.limit)
            self._loaded[name] = bench
        return self._loaded[name]

    def units_of(self, name: str):
        """Unit reader for benchmark ``name``: stored units, or audio through the corpus' pipeline."""
        bench = self.get(name)
        if not any(s is not None and s.audio is not None and s.units is None for p in bench.pairs for s in (p.prompt, p.correct, p.wrong)):
            return None
        if name not in self._units:
            if self.corpus_config is None:
                raise UserError(f"benchmark {name!r} ({bench.source}) has audio; name the corpus whose extractor and codebook the model's units come from (--corpus)")
            from scaling.evaluation.audio import AudioUnits

            self._units[name] = AudioUnits(bench, self.corpus_config, self._corpus())
        return self._units[name]

    def _corpus(self):
        if self.corpus is None:
            from scaling.data.build import open_corpus

            self.corpus = open_corpus(self.corpus_config, self.cache_root, progress=self.progress)
        return self.corpus


def run_tasks(model, vocab: ModelVocab, tasks: list[Task], benches: Benchmarks, *, mask_other_modality: bool = False,
              score: str = "sequence", context: int | None = None, device="cpu", text_lm=None) -> list:
    """Score every task; ``text_lm``: (model, ModelVocab) of the initial text LM for ``_textlm`` tasks.

    ``context``: the model's training context in tokens (None: sequences in one piece); the text
    LM is scored with the context of its own config (:func:`config_context`).

    Speech is checked against the model's units: the codebook size (always) and, when the model's
    corpus is open, the codebook identity a benchmark file declares."""
    from scaling.evaluation.scoring import evaluate

    results = []
    for task in tasks:
        bench = benches.get(task.bench)
        if "speech" in DIRECTIONS[task.direction]:
            own = benches.corpus.meta.get("codebook") if benches.corpus is not None else None
            if bench.codebook and own and bench.codebook != own:
                raise UserError(f"vocabulary mismatch: benchmark {bench.name!r} ({bench.source}) has units of codebook {bench.codebook}, "
                                f"but the model's corpus uses codebook {own}; expected units of the model's own codebook")
            units = benches.units_of(task.bench)
            if units is not None and units.k != vocab.layout.n_units:
                raise UserError(f"vocabulary mismatch: the corpus codebook has k={units.k} but the model's vocabulary "
                                f"({vocab.source}) has {vocab.layout.n_units} unit tokens")
        else:
            units = None
        m, v = text_lm if task.text_lm else (model, vocab)
        results.append(evaluate(m, bench, task.direction, v, units_of=units, mask_other_modality=mask_other_modality,
                                score=score, context=config_context(m) if task.text_lm else context, device=device,
                                column=task.column))
    return results


def config_context(model) -> int | None:
    """The context a Hugging Face model declares (``max_position_embeddings`` of its config; None
    when it declares none). Models built by scaling declare the context they were built for."""
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def write_pair_scores(path: Path, results: list) -> None:
    """Per-pair scores of ``results`` as CSV (atomic): column, pair, correct and wrong mean
    log-likelihoods (nats per token), outcome, voice, kind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(["column", "pair", "loglik_correct", "loglik_wrong", "outcome", "voice", "kind"])
    for r in results:
        for pid, c, x, o, meta in zip(r.ids, r.correct, r.wrong, r.outcome, r.meta):
            w.writerow([r.column, pid, f"{c:.6f}", f"{x:.6f}", o, meta.get("voice", ""), meta.get("kind", "")])
    atomic_write(path, text.getvalue())
