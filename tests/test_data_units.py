"""Unit extraction behind one interface: the HuBERT path on a tiny local HubertModel (random
weights, built here: nothing is downloaded), codebooks given as files, and the CLI commands."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.cli import main as cli_main
from scaling.data.config import resolve_corpus
from scaling.data.corpus import build_corpus
from scaling.data.records import Corpus
from scaling.data.units import Codebook, HubertExtractor, fit_codebook
from scaling.errors import UserError


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory):
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                          conv_dim=(8, 8), conv_stride=(10, 32), conv_kernel=(10, 32), num_conv_pos_embeddings=8,
                          num_conv_pos_embedding_groups=2)
    out = tmp_path_factory.mktemp("hubert")
    HubertModel(config).save_pretrained(str(out))
    return out


def _config(tmp_path, body: str):
    sentences = tmp_path / "s.txt"
    sentences.write_text("The dogs barked at the stranger\nShe earns a lot in her new job\nWe joined forces with another research group\n")
    path = tmp_path / "c.yaml"
    path.write_text(f"sentences: {sentences}\nvoices: [en-us]\nheldout_voices: [en+f3]\n{body}")
    return resolve_corpus(str(path))


def test_hubert_extractor_frames_and_layer(hubert_dir):
    ex = HubertExtractor(str(hubert_dir), layer=1)
    assert ex.frame_s == pytest.approx(320 / 16000), "frame period from the convolution strides"
    feats = ex.features(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1)
    assert feats.shape[1] == 16 and 45 <= feats.shape[0] <= 50
    with pytest.raises(UserError, match="hubert_layer"):
        HubertExtractor(str(hubert_dir), layer=9)
    with pytest.raises(UserError, match="hubert_model"):
        HubertExtractor(str(hubert_dir / "missing"), layer=1)


def test_hubert_corpus_with_fitted_and_given_codebooks(hubert_dir, tmp_path):
    fitted = _config(tmp_path, f"units: {{extractor: hubert, hubert_model: {hubert_dir}, hubert_layer: 1, k: 8, kmeans_frames: 300}}\n")
    c = Corpus(build_corpus(fitted, tmp_path / "cache", progress=False))
    assert c.k == 8 and c.frame_s == pytest.approx(0.02) and len(c.records) >= 3
    assert all(r.groups is not None for r in c.records)
    centroids = np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32)
    np.save(tmp_path / "km.npy", centroids)
    given = _config(tmp_path, f"units: {{extractor: hubert, hubert_model: {hubert_dir}, hubert_layer: 1, k: 8, codebook: {tmp_path / 'km.npy'}}}\n")
    c2 = Corpus(build_corpus(given, tmp_path / "cache", progress=False))
    assert c2.meta["codebook"] != c.meta["codebook"], "the codebook cache is keyed by its source"
    assert np.array_equal(Codebook.load(c2.dir / "codebook.npz").centroids, centroids)
    wrong_k = _config(tmp_path, f"units: {{extractor: hubert, hubert_model: {hubert_dir}, hubert_layer: 1, k: 9, codebook: {tmp_path / 'km.npy'}}}\n")
    with pytest.raises(UserError, match="8 centroids"):
        build_corpus(wrong_k, tmp_path / "cache", progress=False)


def test_codebook_is_seeded_and_checks_shapes():
    x = np.random.default_rng(0).standard_normal((500, 6)).astype(np.float32)
    a, b = fit_codebook(x, 10, seed=3), fit_codebook(x, 10, seed=3)
    assert np.array_equal(a.centroids, b.centroids) and np.array_equal(a.assign(x), b.assign(x))
    assert a.assign(x).max() < 10
    with pytest.raises(UserError, match="dimension"):
        a.assign(np.zeros((4, 5), np.float32))
    with pytest.raises(UserError, match="at least k frames"):
        fit_codebook(x[:5], 10, seed=0)


def test_cli_build_and_stats(tmp_path, capsys):
    cache = tmp_path / "cache"
    assert cli_main(["data", "build", "tiny", "--cache", str(cache), "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"prepared corpus 'tiny' for text, interleaved, speech in {cache}"
    assert cli_main(["data", "stats", str(cache), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "espeak   synthetic  speech       train" in out and "wordnet  real       text         train" in out
    assert "requested" in out and out.strip().splitlines()[-1].startswith("statistics of 3 prepared set(s)")
    corpus_dir = next(p for p in (cache / "corpus").iterdir() if (p / "corpus.json").is_file())
    assert cli_main(["data", "stats", str(corpus_dir)]) == 0
    out = capsys.readouterr().out
    assert "espeak   train  speech" in out and "units/s" in out and out.strip().splitlines()[-1].startswith("statistics of 1 corpus directory")
    assert cli_main(["data", "stats", str(tmp_path / "nothing")]) == 2
    assert "holds no corpus" in capsys.readouterr().err
    assert cli_main(["data", "build", "defualt"]) == 2
    assert "did you mean 'default'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def hubert_layer_norm_dir(tmp_path_factory):
    """A tiny HubertModel whose feature extractor uses layer norm (trained with attention masks)."""
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
                          conv_stride=(10, 32), conv_kernel=(10, 32), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                          feat_extract_norm="layer", do_stable_layer_norm=True)
    out = tmp_path_factory.mktemp("hubert-ln")
    HubertModel(config).save_pretrained(str(out))
    return out


def test_batched_hubert_features_equal_one_at_a_time(hubert_layer_norm_dir):
    rng = np.random.default_rng(0)
    audios = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 9000, 23000, 4000)]
    one = HubertExtractor(str(hubert_layer_norm_dir), layer=2, batch_seconds=0.0)
    batched = HubertExtractor(str(hubert_layer_norm_dir), layer=2, batch_seconds=10.0)
    singles = [one.features(a) for a in audios]
    together = batched.features_batch(audios)
    for a, b in zip(singles, together):
        assert a.shape == b.shape
        # float32 matmuls over differently padded inputs: equal up to accumulation-order rounding
        assert np.allclose(a, b, atol=1e-4), float(np.abs(a - b).max())


def test_hubert_units_for_a_words_json_source_with_published_codebooks(hubert_dir, tmp_path):
    import joblib
    from sklearn.cluster import KMeans

    from scaling.data import prepare_data
    from scaling.spec import DataSpec
    from tests.data_fixtures import SENTENCES, write_words_json

    write_words_json(tmp_path / "wj", SENTENCES[:4])
    feats = np.random.default_rng(2).standard_normal((200, 16)).astype(np.float32)
    km = KMeans(n_clusters=8, n_init=1, random_state=0).fit(feats)
    joblib.dump(km, tmp_path / "km.bin")
    np.save(tmp_path / "km.npy", km.cluster_centers_.astype(np.float32))
    body = (f"units: {{extractor: hubert, hubert_model: {hubert_dir}, hubert_layer: 1, k: 8, codebook: {{path}}{{trust}}}}\n"
            "sources:\n  - {name: wj, format: words_json, path: wj, real: true}\n")
    for name, path, trust in (("npy", "km.npy", ""), ("pickle", "km.bin", ", trust_codebook_pickle: true")):
        (tmp_path / f"{name}.yaml").write_text(body.replace("{path}", str(tmp_path / path)).replace("{trust}", trust))
    preps = [prepare_data(DataSpec(mode="speech", corpus=str(tmp_path / f"{n}.yaml"), context=16), tmp_path / "cache", seed=0, progress=False)
             for n in ("npy", "pickle")]
    a, b = (p.train_batch(0, 8)[0] for p in preps)
    assert np.array_equal(a, b), "the published k-means file and its centroids as .npy give the same units"
    assert a.max() <= 8 + 1, "unit ids and the unit vocabulary's pad / eos"
    assert sum(c["documents"] for c in preps[0].manifest["tokens"]["wj"]["speech"].values()) == 4
    (tmp_path / "untrusted.yaml").write_text(body.replace("{path}", str(tmp_path / "km.bin")).replace("{trust}", ""))
    with pytest.raises(UserError, match="trust_codebook_pickle"):
        prepare_data(DataSpec(mode="speech", corpus=str(tmp_path / "untrusted.yaml"), context=16), tmp_path / "cache", seed=0, progress=False)
