"""Benchmark files, offline builders (balance, deduplication, held-out voices) and official readers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from scaling.data.config import PRESETS, corpus_sentences
from scaling.data.wordnet import split_of
from scaling.errors import UserError
from scaling.evaluation import pairs as P
from scaling.evaluation.format import FORMAT, Benchmark, Pair, Segment, read_benchmark, write_benchmark
from scaling.evaluation.official import read_official

SENTENCES = corpus_sentences(PRESETS["default"])
TEST = [s for s in SENTENCES if split_of(s) == "test"]
TRAIN = [s for s in SENTENCES if split_of(s) == "train"]


# ---------------------------------------------------------------- format
def _write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


HEADER = {"format": FORMAT, "name": "t", "k": 4}


def test_benchmark_round_trip(tmp_path):
    bench = Benchmark("t", (Pair("a", Segment(text="x y", units=np.array([1, 2])), Segment(units=np.array([3])),
                                 Segment(text="p", units=np.array([0])), {"block": 0}),), k=4, codebook="cb", source="here")
    write_benchmark(tmp_path / "t.jsonl", bench)
    back = read_benchmark(tmp_path / "t.jsonl")
    assert back.k == 4 and back.codebook == "cb" and back.pairs[0].prompt.text == "p"
    assert back.pairs[0].correct.units.tolist() == [1, 2] and back.pairs[0].meta == {"block": 0}
    assert back.modalities() == {"speech"} and back.prompted


@pytest.mark.parametrize("row, message", [
    ({"id": "p1", "correct": {"units": []}, "wrong": {"units": [1]}}, r"t.jsonl:2 \(pair 'p1'\): empty correct side"),
    ({"id": "p1", "correct": {"text": "  "}, "wrong": {"text": "b"}}, r"pair 'p1'.*empty correct side"),
    ({"id": "p1", "correct": {}, "wrong": {"units": [1]}}, r"pair 'p1'.*empty correct side"),
    ({"id": "p1", "correct": {"units": [1]}, "wrong": {"units": [9]}}, r"pair 'p1'.*unit id 9 outside the codebook"),
    ({"id": "p1", "correct": {"units": [1]}, "wrong": {"units": [2]}, "label": 1}, r"t.jsonl:2: unknown field 'label' in pair 'p1'"),
    ({"id": "p1", "correct": {"units": [1], "wav": "x"}, "wrong": {"units": [2]}}, r"pair 'p1'.*unknown field correct.'wav'"),
    ({"id": "p1", "correct": {"audio": "missing.wav"}, "wrong": {"units": [2]}}, r"pair 'p1'.*missing.wav.*does not exist"),
    ({"id": "p1", "correct": {"units": [1]}}, r"pair 'p1'.*no 'wrong' side"),
])
def test_bad_pairs_name_file_line_and_pair(tmp_path, row, message):
    path = _write_lines(tmp_path / "t.jsonl", [HEADER, row])
    with pytest.raises(UserError, match=message):
        read_benchmark(path)


def test_bad_header_and_duplicates(tmp_path):
    with pytest.raises(UserError, match=r"t.jsonl:1: unknown field 'lang' in header"):
        read_benchmark(_write_lines(tmp_path / "t.jsonl", [{**HEADER, "lang": "en"}]))
    dup = {"id": "p", "correct": {"units": [1]}, "wrong": {"units": [2]}}
    with pytest.raises(UserError, match=r"t.jsonl:3 \(pair 'p'\): duplicate pair id"):
        read_benchmark(_write_lines(tmp_path / "t.jsonl", [HEADER, dup, dup]))


# ---------------------------------------------------------------- builders
def _blind_accuracy(pairs: list[P.PlannedPair]) -> float:
    """Accuracy of a scorer that never looks at the prompt and scores text by a fixed random
    function of its words (any such 'unigram' scorer must get exactly 0.5 on a balanced set)."""
    rng = np.random.default_rng(0)
    value: dict[str, float] = {}
    score = lambda text: sum(value.setdefault(w.strip(",.?!").lower(), rng.normal()) for w in text.split())  # noqa: E731
    return float(np.mean([0.5 if np.isclose(score(p.correct), score(p.wrong)) else float(score(p.correct) > score(p.wrong)) for p in pairs]))


def _check_dedup_and_blocks(pairs):
    keys = [(p.prompt, p.correct.lower(), p.wrong.lower()) for p in pairs]
    assert len(set(keys)) == len(keys) and all(p.correct != p.wrong for p in pairs)
    assert len({p.id for p in pairs}) == len(pairs)
    blocks = [p.meta["block"] for p in pairs]
    assert blocks == sorted(blocks)


def test_topic_pairs_every_ending_once_correct_once_wrong():
    pairs = P.topic_pairs(TEST)
    _check_dedup_and_blocks(pairs)
    assert len(pairs) >= 0.9 * len(TEST)
    assert Counter(p.correct for p in pairs) == Counter(p.wrong for p in pairs)
    assert _blind_accuracy(pairs) == 0.5
    for p in pairs:
        source = TEST[p.meta["sentence"]]
        assert f"{p.prompt} {p.correct}" == source and len(p.correct.split()) >= 3


def test_swap_pairs_swap_one_word_and_balance_it():
    pairs = P.swap_pairs(TEST)
    _check_dedup_and_blocks(pairs)
    assert len(pairs) >= 0.8 * len(TEST) and _blind_accuracy(pairs) == 0.5
    for p in pairs:
        diff = [(a, b) for a, b in zip(p.correct.split(), p.wrong.split()) if a != b]
        assert len(diff) == 1 and P.suffix_class(p.meta["word"]) == P.suffix_class(p.meta["swapped"])


def test_grammar_pairs_are_balanced_per_rule():
    pairs = P.grammar_pairs(TEST)
    _check_dedup_and_blocks(pairs)
    kinds = Counter(p.meta["kind"] for p in pairs)
    assert kinds["order"] > 100 and kinds["agreement"] > 0
    rules = Counter(p.meta["rule"] for p in pairs if "rule" in p.meta)
    for rule, n in rules.items():
        src, dst = rule.split(">")
        assert rules[f"{dst}>{src}"] == n
    for p in pairs:
        if p.meta["kind"] == "order":
            assert sorted(P.split_token(w)[0].lower() for w in p.correct.split()) == sorted(P.split_token(w)[0].lower() for w in p.wrong.split())
    assert _blind_accuracy(pairs) == 0.5


def test_lexical_pairs_are_unseen_pronounceable_pseudo_words():
    pairs = P.lexical_pairs(TRAIN, SENTENCES)
    lexicon = P.lexicon_of(SENTENCES)
    _check_dedup_and_blocks(pairs)
    assert len(pairs) > 1000
    assert not any(p.wrong in lexicon for p in pairs) and len({p.wrong for p in pairs}) == len(pairs)
    assert all(p.correct in lexicon and any(v in p.wrong for v in "aeiouy") for p in pairs)


def test_head_keeps_whole_blocks():
    planned = P.topic_pairs(TEST)
    bench = Benchmark("stc", tuple(Pair(p.id, Segment(text=p.correct), Segment(text=p.wrong), Segment(text=p.prompt), p.meta) for p in planned))
    for n in (1, 7, 10):
        head = bench.head(n)
        assert len(head.pairs) % 2 == 0 and 0 < len(head.pairs) <= max(n, 2)


# ---------------------------------------------------------------- official layouts
def _wav(path: Path, seconds: float = 0.3, amplitude: float = 0.3) -> None:
    import soundfile

    t = np.arange(int(16000 * seconds)) / 16000
    soundfile.write(str(path), (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)


def test_zerospeech_gold_csv_layout(tmp_path):
    for name in ("w1", "n1", "w2", "n2"):
        _wav(tmp_path / f"{name}.wav")
    (tmp_path / "gold.csv").write_text("id,filename,voice,correct,word\n1,w1,v,1,cat\n1,n1,v,0,dat\n2,w2.wav,v,1,dog\n2,n2,v,0,fog\n")
    bench = read_official(tmp_path, "zr")
    assert bench.name == "zr" and len(bench.pairs) == 2 and not bench.prompted
    assert bench.pairs[0].correct.audio.name == "w1.wav" and bench.pairs[0].meta == {"voice": "v", "word": "cat"}
    (tmp_path / "gold.csv").write_text("id,filename,correct\n1,w1,1\n1,n1,1\n")
    with pytest.raises(UserError, match=r"gold.csv: pair '1' has 2 correct and 0 incorrect"):
        read_official(tmp_path)


def test_pair_directory_and_storycloze_csv(tmp_path):
    d = tmp_path / "sc"
    (d / "sub").mkdir(parents=True)
    for side in ("correct", "incorrect", "mutual"):
        _wav(d / "sub" / f"7_{side}.wav")
        (d / "sub" / f"7_{side}.txt").write_text(f"{side} words\n")
    bench = read_official(d)
    p = bench.pairs[0]
    assert p.id == "sub/7" and p.prompt.text == "mutual words" and p.wrong.audio.name == "7_incorrect.wav"
    assert bench.modalities() == {"speech", "text"} and bench.prompted
    (d / "sub" / "7_incorrect.wav").unlink()
    (d / "sub" / "7_incorrect.txt").unlink()
    with pytest.raises(UserError, match=r"pair 'sub/7'.*no 7_incorrect.wav or .txt"):
        read_official(d)
    csv = tmp_path / "cloze.csv"
    csv.write_text("InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,RandomFifthSentenceQuiz1,RandomFifthSentenceQuiz2,AnswerRightEnding\n"
                   "s1,A.,B.,C.,D.,Wrong end.,Right end.,2\n")
    story = read_official(csv).pairs[0]
    assert story.prompt.text == "A. B. C. D." and story.correct.text == "Right end." and story.wrong.text == "Wrong end."
    with pytest.raises(UserError, match="layout not recognised"):
        read_official(tmp_path / "sc" / "sub" / "7_correct.txt")
