"""Text-level construction of the offline benchmarks' pairs from corpus sentences (no speech yet).

Each builder returns :class:`PlannedPair` items grouped in *blocks*: the pairs of one block are
kept or dropped together, and each block is balanced so that a model that ignores what the set
tests scores exactly chance on it:

* :func:`topic_pairs` (tSC-like): a sentence is cut in half, prompt = first half, correct = its own
  second half, wrong = the second half of another test sentence. Sentences are coupled (a, b):
  pair a uses b's ending as the wrong one and pair b uses a's, so every ending is once correct and
  once wrong and a model that scores endings without looking at the prompt gets exactly 0.5.
* :func:`swap_pairs` (sSC-like): the same prompt and correct ending; the wrong ending swaps one
  content word of the ending for the content word of the coupled sentence (same suffix class:
  -ing, -ed, -ly, -s or none), so the two pairs of a block contain the same two words once each on
  the correct and once on the wrong side (unigram frequency cannot decide them).
* :func:`grammar_pairs` (sBLIMP-like): a sentence vs a violation of it: ``order`` (a determiner
  swapped with the word after it: "ate the apple" → "ate apple the"; same words, so unigram-neutral
  by construction; words in -ing/-ed/-ly are not swapped), ``agreement`` (is/are, was/were, has/have, does/do swapped) and ``article``
  (a/an swapped). Agreement and article pairs come in blocks of one pair per direction (an
  is→are next to an are→is), so a preference for the more frequent form cancels.
* :func:`lexical_pairs` (sWUGGY-like): a word heard in training vs a pronounceable pseudo-word
  made from it by replacing one vowel group (with another of the same length) or the onset
  consonant cluster (with another English onset), and absent from the corpus' lexicon.

Blocks are shuffled with a fixed seed, so the first N pairs of a set are a balanced sample.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

#: seed of every builder's shuffles (fixed: a set is a function of the corpus only)
SEED = 20250403
STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their theirs them themselves then there these
they this those through to too under until up very was we were what when where which while who whom why will with would you
your yours yourself yourselves one ones also upon may might must shall""".split())
DETERMINERS = frozenset("the a an this these those his their my your its our every each".split())
AGREEMENT = {"is": "are", "are": "is", "was": "were", "were": "was", "has": "have", "have": "has", "does": "do", "do": "does"}
ARTICLE = {"a": "an", "an": "a"}
VOWEL_GROUPS = {1: ("a", "e", "i", "o", "u"), 2: ("ai", "ea", "ee", "oa", "oo", "ou", "oi", "au")}
ONSETS = ("b", "bl", "br", "c", "ch", "cl", "cr", "d", "dr", "f", "fl", "fr", "g", "gl", "gr", "h", "j", "k", "l", "m", "n",
          "p", "pl", "pr", "r", "s", "sh", "sk", "sl", "sm", "sn", "sp", "st", "str", "t", "th", "tr", "v", "w", "z")
_PUNCT = ",.?!;:"


@dataclass(frozen=True)
class PlannedPair:
    """A pair in text: prompt (None for unprompted sets), correct and wrong text; meta holds the
    block number and what kind of pair it is."""

    id: str
    prompt: str | None
    correct: str
    wrong: str
    meta: dict[str, Any] = field(default_factory=dict)


def split_token(token: str) -> tuple[str, str]:
    """``"apple,"`` → ``("apple", ",")``: a word and its trailing punctuation."""
    core = token.rstrip(_PUNCT)
    return core, token[len(core):]


def halves(sentence: str) -> tuple[list[str], list[str]]:
    """Prompt and ending words of a sentence: the first ``n // 2`` words and the rest."""
    words = sentence.split()
    return words[: len(words) // 2], words[len(words) // 2:]


def _norm(text: str) -> str:
    return " ".join(split_token(w)[0].lower() for w in text.split())


def _blocks_to_pairs(prefix: str, blocks: list[list[tuple[str | None, str, str, dict]]], rng: np.random.Generator) -> list[PlannedPair]:
    """Shuffle blocks, drop pairs whose (correct, wrong) repeats an earlier one (with their whole
    block), number them."""
    out, seen = [], set()
    for b in rng.permutation(len(blocks)):
        keys = [(_norm(p or ""), _norm(c), _norm(w)) for p, c, w, _ in blocks[b]]
        if any(k in seen or k[1] == k[2] for k in keys):
            continue
        seen.update(keys)
        block = len({p.meta["block"] for p in out})
        for p, c, w, meta in blocks[b]:
            out.append(PlannedPair(f"{prefix}-{len(out):05d}", p, c, w, {**meta, "block": block}))
    return out


def topic_pairs(sentences: list[str], prefix: str = "stc", seed: int = SEED) -> list[PlannedPair]:
    """tSC-like pairs from held-out ``sentences`` (see the module doc)."""
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(len(sentences))
    blocks = []
    for a, b in zip(order[0::2], order[1::2]):
        (pa, ea), (pb, eb) = halves(sentences[a]), halves(sentences[b])
        if _norm(" ".join(ea)) == _norm(" ".join(eb)):
            continue
        blocks.append([(" ".join(pa), " ".join(ea), " ".join(eb), {"kind": "topic", "sentence": int(a)}),
                       (" ".join(pb), " ".join(eb), " ".join(ea), {"kind": "topic", "sentence": int(b)})])
    return _blocks_to_pairs(prefix, blocks, rng)


def suffix_class(word: str) -> str:
    """A crude part-of-speech proxy: ``ing``, ``ed``, ``ly``, ``s`` (not ``ss``) or ``""``."""
    for suffix in ("ing", "ed", "ly"):
        if word.endswith(suffix):
            return suffix
    return "s" if word.endswith("s") and not word.endswith("ss") else ""


def _content_positions(words: list[str]) -> list[int]:
    out = []
    for i, w in enumerate(words):
        core, _ = split_token(w)
        if core.isalpha() and core.islower() and len(core) >= 3 and core not in STOPWORDS:
            out.append(i)
    return out


def swap_pairs(sentences: list[str], prefix: str = "ssc", seed: int = SEED) -> list[PlannedPair]:
    """sSC-like pairs from held-out ``sentences`` (see the module doc)."""
    rng = np.random.default_rng([seed, 2])
    by_class: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for s in rng.permutation(len(sentences)):
        _, ending = halves(sentences[s])
        positions = _content_positions(ending)
        if positions:
            pos = positions[int(rng.integers(len(positions)))]
            by_class[suffix_class(split_token(ending[pos])[0])].append((int(s), pos))
    blocks = []
    for cls in sorted(by_class):
        items = by_class[cls]
        for (a, pa), (b, pb) in zip(items[0::2], items[1::2]):
            (prompt_a, end_a), (prompt_b, end_b) = halves(sentences[a]), halves(sentences[b])
            wa, wb = split_token(end_a[pa])[0], split_token(end_b[pb])[0]
            cores_a = {split_token(w)[0] for w in end_a}
            cores_b = {split_token(w)[0] for w in end_b}
            if wa == wb or wb in cores_a or wa in cores_b:
                continue
            wrong_a = end_a[:pa] + [wb + split_token(end_a[pa])[1]] + end_a[pa + 1:]
            wrong_b = end_b[:pb] + [wa + split_token(end_b[pb])[1]] + end_b[pb + 1:]
            meta = {"kind": "swap", "class": cls}
            blocks.append([(" ".join(prompt_a), " ".join(end_a), " ".join(wrong_a), {**meta, "sentence": a, "word": wa, "swapped": wb}),
                           (" ".join(prompt_b), " ".join(end_b), " ".join(wrong_b), {**meta, "sentence": b, "word": wb, "swapped": wa})])
    return _blocks_to_pairs(prefix, blocks, rng)


def _with_case(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def order_violation(words: list[str]) -> list[str] | None:
    """The sentence with its first determiner swapped with the (lowercase) word after it. Words in
    -ing, -ed or -ly are skipped: fronted, they can leave a grammatical sentence ("an orbiting
    electron" → "orbiting an electron")."""
    for i in range(len(words) - 1):
        det, tail = split_token(words[i])
        nxt, nxt_tail = split_token(words[i + 1])
        if det.lower() in DETERMINERS and not tail and nxt.isalpha() and nxt.islower() and suffix_class(nxt) in ("", "s"):
            out = list(words)
            out[i] = _with_case(nxt, det)
            out[i + 1] = det.lower() + nxt_tail
            return out
    return None


def substitution(words: list[str], table: dict[str, str]) -> tuple[list[str], str, str] | None:
    """The sentence with its first word found in ``table`` replaced (case kept): (words, from, to)."""
    for i, w in enumerate(words):
        core, tail = split_token(w)
        if core.lower() in table:
            out = list(words)
            out[i] = _with_case(table[core.lower()], core) + tail
            return out, core.lower(), table[core.lower()]
    return None


def grammar_pairs(sentences: list[str], prefix: str = "sblimp", seed: int = SEED) -> list[PlannedPair]:
    """sBLIMP-like pairs from held-out ``sentences`` (see the module doc)."""
    rng = np.random.default_rng([seed, 3])
    blocks = []
    directed: dict[tuple[str, str, str], list[tuple]] = defaultdict(list)
    for s, sentence in enumerate(sentences):
        words = sentence.split()
        swapped = order_violation(words)
        if swapped:
            blocks.append([(None, sentence, " ".join(swapped), {"kind": "order", "sentence": s})])
        for kind, table in (("agreement", AGREEMENT), ("article", ARTICLE)):
            found = substitution(words, table)
            if found:
                wrong, src, dst = found
                directed[(kind, *sorted((src, dst)))].append((None, sentence, " ".join(wrong), {"kind": kind, "sentence": s, "rule": f"{src}>{dst}"}))
    for (kind, x, y), items in sorted(directed.items()):
        forward = [i for i in items if i[3]["rule"] == f"{x}>{y}"]
        backward = [i for i in items if i[3]["rule"] == f"{y}>{x}"]
        blocks.extend([f, b] for f, b in zip(forward, backward))
    return _blocks_to_pairs(prefix, blocks, rng)


def lexicon_of(sentences: Iterable[str]) -> Counter:
    """Lowercase word counts of ``sentences`` (punctuation stripped)."""
    return Counter(split_token(w)[0].lower() for s in sentences for w in s.split())


def pseudo_word(word: str, rng: np.random.Generator, taken: set[str]) -> str | None:
    """A pronounceable non-word made from ``word`` (see the module doc), not in ``taken``."""
    parts = re.findall(r"[aeiouy]+|[^aeiouy]+", word)
    options = []
    for i, part in enumerate(parts):
        if part[0] in "aeiouy":
            silent_e = i == len(parts) - 1 and part == "e"
            if not silent_e:
                options.extend((i, v) for v in VOWEL_GROUPS[min(2, len(part))] if v != part)
        elif i == 0:
            options.extend((i, o) for o in ONSETS if o != part)
    for k in rng.permutation(len(options)):
        i, repl = options[k]
        candidate = "".join(parts[:i] + [repl] + parts[i + 1:])
        if candidate not in taken and re.search(r"[aeiouy]", candidate):
            return candidate
    return None


def lexical_pairs(train_sentences: list[str], all_sentences: list[str], prefix: str = "swuggy",
                  min_count: int = 2, seed: int = SEED) -> list[PlannedPair]:
    """sWUGGY-like pairs: words of 4–10 letters heard at least ``min_count`` times in
    ``train_sentences`` (no stop words), each against a pseudo-word absent from ``all_sentences``."""
    rng = np.random.default_rng([seed, 4])
    heard = lexicon_of(train_sentences)
    taken = set(lexicon_of(all_sentences))
    words = sorted(w for w, c in heard.items() if c >= min_count and w.isalpha() and 4 <= len(w) <= 10 and w not in STOPWORDS)
    blocks = []
    for w in words:
        fake = pseudo_word(w, rng, taken)
        if fake is not None:
            taken.add(fake)
            blocks.append([(None, w, fake, {"kind": "lexical", "count": heard[w]})])
    return _blocks_to_pairs(prefix, blocks, rng)
