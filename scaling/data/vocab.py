"""Vocabularies: the default text tokenizer, extension with unit tokens and markers, unit-only.

Three layouts, all saved as a local Hugging Face tokenizer directory (loadable with
``transformers.AutoTokenizer.from_pretrained``) plus ``scaling_vocab.json`` describing the layout:

- ``text``: a base text tokenizer as is (a pad token is added if it has none of its own).
- ``extended``: a base text tokenizer followed by ``n_units`` unit tokens ``<unit_0>`` … and the
  modality markers ``<speech>``, ``<text>``. Ids ``[0, n_text_vocab)`` are the base vocabulary
  untouched; units occupy ``[unit_offset, unit_offset + n_units)`` contiguously; markers, then a
  pad and an end-of-sequence token if the base has none of its own (padding never reuses a real
  token's id, in particular not end-of-sequence).
- ``units``: textless models: ``<unit_0>`` … ``<unit_{K-1}>``, then ``<pad>``, ``<eos>``.

The default text tokenizer is a byte-level BPE trained with the ``tokenizers`` library on the
training split of the shipped sentences. :class:`Vocabulary` encodes text, units and markers into
ids of a saved layout and decodes ids back into modality segments.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from scaling.errors import UserError

LAYOUT_FILE = "scaling_vocab.json"
SPEECH_MARKER = "<speech>"
TEXT_MARKER = "<text>"
DEFAULT_PAD = "<pad>"
DEFAULT_EOS = "<|endoftext|>"
#: vocabulary size of the default byte-level BPE (base text rows, specials included).
DEFAULT_TEXT_VOCAB = 1024


def unit_token(i: int) -> str:
    """The token string of unit ``i``."""
    return f"<unit_{i}>"


@dataclass(frozen=True)
class Layout:
    """Where everything sits in a vocabulary (all ids are row indices of the embedding).

    kind: ``text`` | ``extended`` | ``units``; n_text_vocab: rows of the base text vocabulary
    (0 for ``units``); n_units: unit tokens (0 for ``text``); unit_offset: id of unit 0;
    speech_marker / text_marker: marker ids (-1 when absent); pad_id, eos_id: padding and
    end-of-sequence; vocab_size: all rows; word_prefix: what precedes a word that is not the first
    of a sentence when words are encoded one at a time (``" "`` for byte-level BPEs).
    """

    kind: str
    n_text_vocab: int
    n_units: int
    unit_offset: int
    speech_marker: int
    text_marker: int
    pad_id: int
    eos_id: int
    vocab_size: int
    word_prefix: str

    @property
    def n_added_vocab(self) -> int:
        """Rows beyond the base text vocabulary (units, markers, added pad / eos)."""
        return self.vocab_size - self.n_text_vocab


def train_text_tokenizer(sentences: list[str], out_dir: Path, vocab_size: int = DEFAULT_TEXT_VOCAB) -> None:
    """Train the default byte-level BPE on ``sentences`` and save it (with pad and eos) in ``out_dir``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[DEFAULT_EOS, DEFAULT_PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sentences, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=DEFAULT_EOS, pad_token=DEFAULT_PAD)
    fast.save_pretrained(str(out_dir))


def build_vocabulary(out_dir: Path, kind: str, n_units: int = 0, base_dir: Path | None = None) -> Layout:
    """Save a tokenizer of layout ``kind`` in ``out_dir`` and return its :class:`Layout`.

    ``base_dir``: the local text tokenizer to start from (``text`` and ``extended``).
    Raises UserError when ``base_dir`` is missing or already uses a unit or marker string.
    """
    out_dir = Path(out_dir)
    if kind == "units":
        layout = _build_unit_vocabulary(out_dir, n_units)
    else:
        tok = load_tokenizer(base_dir)
        n_text = len(tok)
        word_prefix = tokenizer_word_prefix(tok)
        from tokenizers import AddedToken

        new: list[str] = [unit_token(i) for i in range(n_units)] if kind == "extended" else []
        new += [SPEECH_MARKER, TEXT_MARKER] if kind == "extended" else []
        taken = set(tok.get_vocab())
        clash = [t for t in new if t in taken]
        if clash:
            raise UserError(f"tokenizer {str(base_dir)!r} already has token {clash[0]!r}; expected unit and marker strings to be new")
        tok.add_tokens([AddedToken(t, special=False, normalized=False, single_word=False) for t in new])
        if tok.pad_token is None or tok.pad_token_id == tok.eos_token_id:
            tok.add_special_tokens({"pad_token": DEFAULT_PAD if DEFAULT_PAD not in taken else "<scaling_pad>"})
        if tok.eos_token is None:
            tok.add_special_tokens({"eos_token": "<scaling_eos>"})
        ids = tok.convert_tokens_to_ids(new)
        if ids != list(range(n_text, n_text + len(new))):
            raise UserError(f"tokenizer {str(base_dir)!r}: added unit tokens did not get contiguous ids after its {n_text} rows")
        has = kind == "extended"
        layout = Layout(
            kind=kind,
            n_text_vocab=n_text,
            n_units=n_units if has else 0,
            unit_offset=n_text if has else -1,
            speech_marker=n_text + n_units if has else -1,
            text_marker=n_text + n_units + 1 if has else -1,
            pad_id=int(tok.pad_token_id),
            eos_id=int(tok.eos_token_id),
            vocab_size=len(tok),
            word_prefix=word_prefix,
        )
        tok.save_pretrained(str(out_dir))
    (out_dir / LAYOUT_FILE).write_text(json.dumps(asdict(layout), indent=1) + "\n")
    return layout


def load_tokenizer(path: Path | str | None):
    """``AutoTokenizer.from_pretrained(path)`` for a local directory; UserError if it is missing."""
    if path is None or not Path(path).is_dir():
        raise UserError(f"tokenizer_dir = {str(path)!r}: expected a local Hugging Face tokenizer directory (nothing is downloaded)")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(f"tokenizer_dir = {str(path)!r}: not a loadable tokenizer ({str(exc).splitlines()[0]})") from None


def tokenizer_word_prefix(tok) -> str:
    """``" "`` if a mid-sentence word encodes alone as ``" word"``, else ``""`` (e.g. SentencePiece)."""
    tail = tok.encode("a the", add_special_tokens=False)[1:]
    return " " if tok.encode(" the", add_special_tokens=False) == tail else ""


def _build_unit_vocabulary(out_dir: Path, n_units: int) -> Layout:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {unit_token(i): i for i in range(n_units)}
    vocab[DEFAULT_PAD] = n_units
    vocab["<eos>"] = n_units + 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token=DEFAULT_PAD))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=DEFAULT_PAD, eos_token="<eos>")
    fast.save_pretrained(str(out_dir))
    return Layout("units", 0, n_units, 0, -1, -1, n_units, n_units + 1, n_units + 2, "")


class Vocabulary:
    """Encoder/decoder for a saved vocabulary directory (see module doc for the layouts)."""

    def __init__(self, tokenizer_dir: Path):
        self.dir = Path(tokenizer_dir)
        self.layout = Layout(**json.loads((self.dir / LAYOUT_FILE).read_text()))
        self._tok = None

    @property
    def tokenizer(self):
        """The Hugging Face tokenizer (loaded on first use)."""
        if self._tok is None:
            self._tok = load_tokenizer(self.dir)
        return self._tok

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added). UserError for a unit-only vocabulary."""
        if self.layout.kind == "units":
            raise UserError("encode_text on a unit-only (textless) vocabulary; expected data.mode 'text' or 'interleaved'")
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text (no special tokens), in one batched call (straight to the Rust
        tokenizer of a fast tokenizer: the same ids without the Python wrapper's per-text cost)."""
        if self.layout.kind == "units":
            raise UserError("encode_text on a unit-only (textless) vocabulary; expected data.mode 'text' or 'interleaved'")
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            return [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def encode_words(self, words: list[str]) -> list[list[int]]:
        """Token ids of each word of a sentence, encoded one at a time: words after the first carry
        :attr:`Layout.word_prefix`, so that for byte-level BPEs the concatenation equals
        :meth:`encode_text` of the space-joined sentence."""
        return self.encode_words_batch([words])[0]

    def encode_words_batch(self, sentences: list[list[str]]) -> list[list[list[int]]]:
        """:meth:`encode_words` of many sentences in one batched tokenizer call."""
        prefix = self.layout.word_prefix
        flat = [w if i == 0 else prefix + w for words in sentences for i, w in enumerate(words)]
        distinct = list(dict.fromkeys(flat))  # words repeat: encode each spelling once
        known = dict(zip(distinct, self.encode_batch(distinct) if distinct else []))
        ids = [known[w] for w in flat]
        out, pos = [], 0
        for words in sentences:
            out.append(ids[pos: pos + len(words)])
            pos += len(words)
        return out

    def encode_units(self, units) -> list[int]:
        """Token ids of unit ids ``units`` (each in ``[0, n_units)``); UserError outside it."""
        lay = self.layout
        if lay.n_units == 0:
            raise UserError("encode_units on a text-only vocabulary; expected data.mode 'speech' or 'interleaved'")
        out = []
        for u in units:
            if not 0 <= int(u) < lay.n_units:
                raise UserError(f"unit id {int(u)} outside the codebook; expected 0 <= unit < {lay.n_units}")
            out.append(lay.unit_offset + int(u))
        return out

    def marker_id(self, modality: str) -> int:
        """Id of the ``<speech>`` or ``<text>`` marker; UserError for a vocabulary without markers."""
        ids = {"speech": self.layout.speech_marker, "text": self.layout.text_marker}
        if modality not in ids:
            raise UserError(f"marker {modality!r}: expected 'speech' or 'text'")
        if ids[modality] < 0:
            raise UserError(f"vocabulary of kind {self.layout.kind!r} has no modality markers; expected an interleaved vocabulary")
        return ids[modality]

    def decode(self, ids) -> list[tuple[str, object]]:
        """Split ids into segments: ``("text", str)``, ``("speech", [unit ids])``, ``("marker",
        "speech"|"text")``, ``("eos", None)``; pad ids are dropped."""
        lay = self.layout
        segments: list[tuple[str, object]] = []
        text_run: list[int] = []

        def flush():
            if text_run:
                segments.append(("text", self.tokenizer.decode(text_run)))
                text_run.clear()

        for i in map(int, ids):
            if i == lay.pad_id:
                continue
            if lay.n_units and lay.unit_offset <= i < lay.unit_offset + lay.n_units:
                flush()
                if segments and segments[-1][0] == "speech":
                    segments[-1][1].append(i - lay.unit_offset)
                else:
                    segments.append(("speech", [i - lay.unit_offset]))
            elif i in (lay.speech_marker, lay.text_marker):
                flush()
                segments.append(("marker", "speech" if i == lay.speech_marker else "text"))
            elif i == lay.eos_id:
                flush()
                segments.append(("eos", None))
            elif 0 <= i < lay.vocab_size:
                text_run.append(i)
            else:
                raise UserError(f"token id {i} outside the vocabulary; expected 0 <= id < {lay.vocab_size}")
        flush()
        return segments
