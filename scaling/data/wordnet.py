"""The shipped text: WordNet 3.0 example sentences, and their split into train / val / test.

WordNet glosses carry usage examples in double quotes after the definition
(``... | a tangible entity; "it was full of rackets, balls and other objects"``). The shipped file
``scaling/assets/wordnet/sentences.txt`` keeps the examples that read as clean, complete
sentences (see :func:`is_clean`), 6–14 words long, deduplicated, one per line. It was produced by
``python -m scaling.data.wordnet /usr/share/wordnet`` (Debian's ``wordnet-base``); the shipped
file, not this script, is what the toolkit reads at run time.

Splits are assigned per sentence from a hash of its text, so that every voice of a sentence lands
in the same split and the split of a sentence never changes when others are added or removed.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from scaling.atomic import atomic_write
from scaling.errors import UserError
from scaling.reading import read_text

MIN_WORDS = 6
MAX_WORDS = 14
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "wordnet" / "sentences.txt"
SPLITS = ("train", "val", "test")
#: share of sentences in (train, val, test); the split of a sentence is a hash of its text.
SPLIT_SHARES = (0.90, 0.05, 0.05)

_WORD = r"[A-Za-z][a-z]*(?:['-][a-z]+)*"
_CLEAN = re.compile(rf"^[A-Z][a-z]*(?:['-][a-z]+)*,?(?: {_WORD},?)*[a-z][.?!]?$")
_QUOTED = re.compile(r'"([^"]*)"')


def is_clean(sentence: str) -> bool:
    """True for a complete, speakable sentence: starts with a capital letter; words of letters
    with inner apostrophes or hyphens; single spaces; commas only right after a word; an optional
    final ``.``, ``?`` or ``!``; no digits, quotes, brackets or abbreviations; 6–14 words."""
    return bool(_CLEAN.match(sentence)) and MIN_WORDS <= len(sentence.split()) <= MAX_WORDS


def extract_examples(wordnet_dir: Path) -> list[str]:
    """Every clean example sentence of ``data.{noun,verb,adj,adv}`` in file order, deduplicated
    (case-insensitively, ignoring final punctuation; the first spelling wins)."""
    seen: set[str] = set()
    out: list[str] = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = Path(wordnet_dir) / f"data.{pos}"
        if not path.is_file():
            raise UserError(f"wordnet directory {str(wordnet_dir)!r}: missing {path.name}; expected WordNet 3.0 database files (Debian package wordnet-base)")
        with open(path, encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or " | " not in line:
                    continue  # licence header or an entry without gloss
                gloss = line.split(" | ", 1)[1]
                for example in _QUOTED.findall(gloss):
                    sentence = example.strip()
                    key = sentence.lower().rstrip(".?!")
                    if is_clean(sentence) and key not in seen:
                        seen.add(key)
                        out.append(sentence)
    return out


def load_sentences(path: Path | None = None) -> list[str]:
    """The shipped sentences (or those of ``path``: one sentence per line, blank lines ignored)."""
    if path is None:
        text = SHIPPED.read_text(encoding="utf-8")
    else:
        if not Path(path).is_file():
            raise UserError(f"sentences file {str(path)!r} does not exist; expected a text file with one sentence per line")
        text = read_text(path, "sentences file")
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_of(sentence: str) -> str:
    """``train``, ``val`` or ``test``: a stable function of the sentence text (SHA-256)."""
    u = int.from_bytes(hashlib.sha256(sentence.encode()).digest()[:8], "big") / 2**64
    edge = 0.0
    for name, share in zip(SPLITS, SPLIT_SHARES):
        edge += share
        if u < edge:
            return name
    return SPLITS[-1]


def main(argv: list[str]) -> int:
    """Regenerate the shipped file: ``python -m scaling.data.wordnet [WORDNET_DIR] [OUT]``."""
    wordnet_dir = Path(argv[0]) if argv else Path("/usr/share/wordnet")
    out = Path(argv[1]) if len(argv) > 1 else SHIPPED
    sentences = extract_examples(wordnet_dir)
    atomic_write(out, "".join(s + "\n" for s in sentences))
    print(f"wrote {len(sentences)} sentences to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
