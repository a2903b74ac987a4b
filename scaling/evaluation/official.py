"""Official benchmark files a user has locally (nothing is downloaded), read as :class:`Benchmark`.

Layouts recognised from a path (the first that fits):

* ``*.jsonl``: this toolkit's format (:mod:`scaling.evaluation.format`).
* a directory with ``gold.csv`` (ZeroSpeech 2021 sLM21 layout: ``lexical/dev`` = sWUGGY,
  ``syntactic/dev`` = sBLIMP): columns ``filename`` (WAV file in the directory, with or without
  ``.wav``), ``correct`` (1 / 0, or True / False) and ``id``; rows sharing ``id`` (and ``voice``
  when that column exists) form one pair, which must have one correct and one incorrect file.
  Other columns (type, subtype, frequency …) go to the pair's meta.
* a directory (searched recursively) of ``<stem>_correct``, ``<stem>_incorrect`` and optionally
  ``<stem>_mutual`` files, each as ``.wav`` and/or ``.txt`` (the spoken StoryCloze layout SIMS'
  slamkit reads for cross-modal StoryCloze; ``_mutual`` is the shared prompt).
* a ``*.csv`` with StoryCloze text columns (``InputSentence1``…``4``, ``RandomFifthSentenceQuiz1``,
  ``RandomFifthSentenceQuiz2``, ``AnswerRightEnding``, as the ROCStories cloze test, or the same in
  snake case ``input_sentence_1`` … ``sentence_quiz1`` … ``answer_right_ending``): text pairs.

Audio sides are turned into units at evaluation time (:mod:`scaling.evaluation.audio`).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

from scaling.errors import UserError
from scaling.reading import read_text
from scaling.evaluation.format import Benchmark, Pair, read_benchmark, segment

LAYOUTS = "a .jsonl benchmark, a directory with gold.csv (ZeroSpeech sLM21), a directory of *_correct/*_incorrect[/_mutual] .wav/.txt files, or a StoryCloze .csv"
_TRUE, _FALSE = ("1", "true", "True", "TRUE"), ("0", "false", "False", "FALSE")


def read_official(path: Path, name: str | None = None) -> Benchmark:
    """The benchmark at ``path`` in any layout above, named ``name`` (default: the path's stem)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"benchmark path {str(path)!r} does not exist; expected {LAYOUTS}")
    if path.is_file() and path.suffix == ".jsonl":
        bench = read_benchmark(path)
    elif path.is_file() and path.suffix == ".csv":
        bench = _storycloze_csv(path)
    elif path.is_dir() and (path / "gold.csv").is_file():
        bench = _zerospeech(path)
    elif path.is_dir() and next(path.rglob("*_correct.*"), None) is not None:
        bench = _pair_dir(path)
    else:
        raise UserError(f"benchmark path {str(path)!r}: layout not recognised; expected {LAYOUTS}")
    return Benchmark(name or bench.name, bench.pairs, bench.k, bench.codebook, bench.description, bench.source)


def _zerospeech(directory: Path) -> Benchmark:
    gold = directory / "gold.csv"
    with io.StringIO(read_text(gold, "benchmark gold file"), newline="") as f:
        reader = csv.DictReader(f)
        missing = {"filename", "correct", "id"} - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{gold}: missing column(s) {', '.join(sorted(missing))}; expected filename, correct and id")
        groups: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: {"correct": [], "wrong": []})
        for line_no, row in enumerate(reader, 2):
            if row["correct"] not in _TRUE + _FALSE:
                raise UserError(f"{gold}:{line_no}: correct = {row['correct']!r}; expected 1 or 0")
            wav = directory / (row["filename"] if row["filename"].endswith(".wav") else row["filename"] + ".wav")
            if not wav.is_file():
                raise UserError(f"{gold}:{line_no}: audio file {str(wav)!r} does not exist")
            key = (row["id"], row.get("voice") or "")
            groups[key]["correct" if row["correct"] in _TRUE else "wrong"].append((wav, row))
    pairs = []
    for (pid, voice), g in groups.items():
        pair_id = f"{pid}-{voice}" if voice else pid
        if len(g["correct"]) != 1 or len(g["wrong"]) != 1:
            raise UserError(f"{gold}: pair {pair_id!r} has {len(g['correct'])} correct and {len(g['wrong'])} incorrect files; expected one of each")
        where = f"{gold} (pair {pair_id!r})"
        (good, row), (bad, _) = g["correct"][0], g["wrong"][0]
        meta = {k: v for k, v in row.items() if k not in ("filename", "correct", "id") and v not in (None, "")}
        pairs.append(Pair(pair_id, segment(where, "correct", audio=good), segment(where, "wrong", audio=bad), None, meta))
    if not pairs:
        raise UserError(f"{gold}: no rows; expected one row per audio file")
    return Benchmark(directory.name, tuple(pairs), description="ZeroSpeech sLM21 layout", source=str(directory))


def _pair_dir(directory: Path) -> Benchmark:
    bases = sorted({f.with_name(f.name[: f.name.rindex("_correct.")]) for f in directory.rglob("*_correct.*")})
    pairs = []
    for base in bases:
        pid = str(base.relative_to(directory))
        where = f"{directory} (pair {pid!r})"
        sides = {}
        for side, key in (("prompt", "mutual"), ("correct", "correct"), ("wrong", "incorrect")):
            wav, txt = base.with_name(f"{base.name}_{key}.wav"), base.with_name(f"{base.name}_{key}.txt")
            if not wav.is_file() and not txt.is_file():
                if side == "prompt":
                    continue
                raise UserError(f"{where}: no {base.name}_{key}.wav or .txt; expected the {side} side")
            text = read_text(txt, "benchmark text").strip() if txt.is_file() else None
            sides[side] = segment(where, side, text=text, audio=wav if wav.is_file() else None)
        pairs.append(Pair(pid, sides["correct"], sides["wrong"], sides.get("prompt")))
    if len({p.prompt is None for p in pairs}) > 1:
        raise UserError(f"{directory}: some pairs have a *_mutual prompt and some do not; expected all or none")
    return Benchmark(directory.name, tuple(pairs), description="correct/incorrect[/mutual] file layout", source=str(directory))


_STORYCLOZE = {
    "camel": (["InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4"],
              ["RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2"], "AnswerRightEnding", "InputStoryid"),
    "snake": (["input_sentence_1", "input_sentence_2", "input_sentence_3", "input_sentence_4"],
              ["sentence_quiz1", "sentence_quiz2"], "answer_right_ending", "story_id"),
}


def _storycloze_csv(path: Path) -> Benchmark:
    with io.StringIO(read_text(path, "benchmark file"), newline="") as f:
        reader = csv.DictReader(f)
        fields = set(reader.fieldnames or ())
        style = next((s for s, (ctx, quiz, ans, _) in _STORYCLOZE.items() if set(ctx + quiz + [ans]) <= fields), None)
        if style is None:
            raise UserError(f"{path}: not a StoryCloze CSV; expected columns InputSentence1-4, RandomFifthSentenceQuiz1-2, AnswerRightEnding")
        context, quiz, answer, story = _STORYCLOZE[style]
        pairs = []
        for line_no, row in enumerate(reader, 2):
            pid = row.get(story) or f"line{line_no}"
            where = f"{path}:{line_no} (pair {pid!r})"
            if row[answer] not in ("1", "2"):
                raise UserError(f"{where}: {answer} = {row[answer]!r}; expected 1 or 2")
            right = int(row[answer]) - 1
            prompt = " ".join(row[c].strip() for c in context)
            pairs.append(Pair(pid, segment(where, "correct", text=row[quiz[right]]), segment(where, "wrong", text=row[quiz[1 - right]]),
                              segment(where, "prompt", text=prompt)))
    if not pairs:
        raise UserError(f"{path}: no stories; expected one story per row")
    return Benchmark(path.stem, tuple(pairs), description="StoryCloze text CSV", source=str(path))
