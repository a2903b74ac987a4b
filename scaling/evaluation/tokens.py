"""From pairs to token sequences: the model's vocabulary and the layout of a scored sequence.

Every side of a pair becomes one sequence (conventions shared by every benchmark and direction):

* it starts with the end-of-sequence token, the document separator the model saw before every
  document in training, so the first content token is predicted from a document start;
* with a vocabulary that has modality markers (interleaved models), a marker precedes the first
  segment and every modality switch, as in the interleaved training stream (SIMS); never at the end.
  S→S therefore has one ``<speech>`` marker, S→T and T→S two markers;
* speech is the side's unit ids as unit tokens; text is the side's text, where a continuation
  after a prompt is encoded with the tokenizer's word prefix (``" "`` for byte-level BPEs) since it
  continues a sentence;
* scored targets are content tokens only (never the leading end-of-sequence token or markers):
  ``score="sequence"`` scores every content token of prompt and continuation and takes the mean
  (as SIMS' slamkit does); ``score="continuation"`` scores the continuation only, the prompt
  being context.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence as Seq

import numpy as np

from scaling.errors import UserError

#: direction → (prompt modality, continuation modality); unprompted sets use ``s`` and ``t``.
DIRECTIONS = {"s2s": ("speech", "speech"), "s2t": ("speech", "text"), "t2s": ("text", "speech"),
              "t2t": ("text", "text"), "s": (None, "speech"), "t": (None, "text")}
SCORES = ("sequence", "continuation")


@dataclass(frozen=True)
class ModelVocab:
    """What the evaluator needs of a model's vocabulary.

    layout: a :class:`scaling.data.vocab.Layout` (kind, unit offset and count, markers, eos, text
    rows ``[0, n_text_vocab)``); encode: a batched text encoder (list of strings → lists of ids,
    no special tokens); source: where it came from (for messages)."""

    layout: object
    encode: Callable[[list[str]], list[list[int]]]
    source: str

    @classmethod
    def of(cls, vocabulary) -> "ModelVocab":
        """From a :class:`scaling.data.vocab.Vocabulary` (a run's exact vocabulary)."""
        encode = vocabulary.encode_batch if vocabulary.layout.kind != "units" else _no_text(str(vocabulary.dir))
        return cls(vocabulary.layout, encode, str(vocabulary.dir))

    @classmethod
    def from_dir(cls, directory: Path) -> "ModelVocab":
        """From a model or tokenizer directory: its ``scaling_vocab.json`` when present, else the
        layout read off the tokenizer's tokens (``<unit_0>`` …, ``<speech>``, ``<text>``)."""
        from scaling.data.vocab import LAYOUT_FILE, Vocabulary

        directory = Path(directory)
        if (directory / LAYOUT_FILE).is_file():
            return cls.of(Vocabulary(directory))
        return _infer(directory)

    @property
    def speech(self) -> bool:
        return self.layout.n_units > 0

    @property
    def text(self) -> bool:
        return self.layout.kind != "units"

    def supports(self, direction: str) -> bool:
        """Whether the vocabulary has every modality ``direction`` reads."""
        return all(m is None or (self.speech if m == "speech" else self.text) for m in DIRECTIONS[direction])


@dataclass(frozen=True)
class Scored:
    """A token sequence and which of its positions are scored targets (``scored[0]`` is False).
    ``modality[i]``: 1 where token i is a unit, 0 otherwise."""

    ids: np.ndarray
    scored: np.ndarray
    modality: np.ndarray


def encode_sides(sides: Seq[tuple[object | None, object]], direction: str, vocab: ModelVocab,
                 units_of: Callable[[object, int, str], np.ndarray], score: str = "sequence") -> list[Scored]:
    """Sequences of ``(prompt segment or None, continuation segment)`` items in ``direction``.

    ``units_of(segment, item_index, side)`` returns a segment's unit ids (reading audio when
    needed). Text is encoded in one batched call."""
    if score not in SCORES:
        raise UserError(f"score = {score!r}: expected one of {', '.join(SCORES)}")
    prompt_mod, cont_mod = DIRECTIONS[direction]
    lay = vocab.layout
    markers = lay.speech_marker >= 0 and lay.text_marker >= 0
    texts: list[str] = []
    plan = []
    for i, (prompt, cont) in enumerate(sides):
        parts = []
        for j, (mod, seg, side) in enumerate(((prompt_mod, prompt, "prompt"), (cont_mod, cont, "continuation"))):
            if mod is None:
                continue
            if mod == "text":
                prefix = lay.word_prefix if j == 1 and prompt_mod is not None else ""
                parts.append((mod, side, len(texts)))
                texts.append(prefix + seg.text)
            else:
                parts.append((mod, side, np.asarray(units_of(seg, i, side), dtype=np.int64) + lay.unit_offset))
        plan.append(parts)
    encoded = vocab.encode(texts) if texts else []
    out = []
    for parts in plan:
        ids, scored, modality = [lay.eos_id], [False], [0]
        previous = None
        for mod, side, content in parts:
            if markers and mod != previous:
                ids.append(lay.speech_marker if mod == "speech" else lay.text_marker)
                scored.append(False)
                modality.append(0)
            previous = mod
            toks = encoded[content] if mod == "text" else content.tolist()
            ids.extend(toks)
            scored.extend([score == "sequence" or side == "continuation"] * len(toks))
            modality.extend([int(mod == "speech")] * len(toks))
        out.append(Scored(np.asarray(ids, dtype=np.int64), np.asarray(scored, dtype=bool), np.asarray(modality, dtype=np.int8)))
    return out


def _no_text(source: str) -> Callable[[list[str]], list[list[int]]]:
    def encode(texts: list[str]) -> list[list[int]]:
        raise UserError(f"vocabulary {source} is unit-only (textless); expected a speech direction (s, s2s)")
    return encode


def _infer(directory: Path) -> ModelVocab:
    """A layout read off a tokenizer that has no ``scaling_vocab.json``: unit tokens ``<unit_i>``
    (contiguous ids), markers ``<speech>`` / ``<text>``; text rows are the ids below the first unit
    (all ids for a text tokenizer)."""
    from scaling.data.vocab import SPEECH_MARKER, TEXT_MARKER, Layout, tokenizer_word_prefix, load_tokenizer, unit_token

    tok = load_tokenizer(directory)
    table = tok.get_vocab()
    n_units = 0
    while unit_token(n_units) in table:
        n_units += 1
    offset = table.get(unit_token(0), -1)
    if n_units and [table[unit_token(i)] for i in range(n_units)] != list(range(offset, offset + n_units)):
        raise UserError(f"tokenizer {str(directory)!r}: unit tokens <unit_0>… do not have contiguous ids; expected a vocabulary built by scaling")
    speech, text = table.get(SPEECH_MARKER, -1), table.get(TEXT_MARKER, -1)
    eos = tok.eos_token_id
    if eos is None:
        raise UserError(f"tokenizer {str(directory)!r} has no end-of-sequence token; expected one to start sequences with")
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    if n_units and offset == 0:
        layout = Layout("units", 0, n_units, 0, -1, -1, pad, eos, len(tok), "")
        return ModelVocab(layout, _no_text(str(directory)), str(directory))
    kind = "extended" if n_units else "text"
    n_text = offset if n_units else len(tok)
    layout = Layout(kind, n_text, n_units, offset if n_units else -1, speech, text, pad, eos, len(tok), tokenizer_word_prefix(tok))
    encode = lambda texts: [list(x) for x in tok(list(texts), add_special_tokens=False)["input_ids"]]  # noqa: E731
    return ModelVocab(layout, encode, str(directory))

