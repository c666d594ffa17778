"""The dense index chosen by size: HNSW-SQ8 above ``dense_exact_max``, its parameters in the manifest,
loaded memory-mapped, searched within a document's rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, DOC_003

from qa.encoding import Embedder
from qa.index.build import build_index, current_path
from qa.index.dense import DenseIndex, DenseParams, choose_kind
from qa.index.manifest import IndexManifest
from qa.index.store import SearchIndex
from qa.sentences import split_sentences
from qa.settings import Settings


@pytest.fixture(scope="module")
def sentence_vectors(embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of the corpus documents' sentences, and of the first 40 as queries."""
    texts = []
    for path in sorted(CORPUS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        texts += [text[a:b] for a, b in split_sentences(text) if b - a > 20]
    vectors = embedder.encode(texts)
    return vectors, vectors[:40]


def test_auto_is_exact_up_to_the_threshold_and_hnsw_above() -> None:
    assert choose_kind(200_000, "auto", 200_000) == "flat"
    assert choose_kind(200_001, "auto", 200_000) == "hnsw"
    assert choose_kind(10, "ivf", 200_000) == "ivf"
    with pytest.raises(ValueError, match="unknown index type"):
        choose_kind(10, "lsh", 200_000)


def test_hnsw_sq8_finds_the_exact_top10(sentence_vectors: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    vectors, queries = sentence_vectors
    hnsw = DenseIndex.build(vectors, "hnsw", hnsw_m=16, ef_construction=40, ef_search=32, train_sample=2000)
    assert hnsw.params.quantizer == "sq8" and not hnsw.exact_vectors
    _, want = DenseIndex.build(vectors, "flat").search(queries, 10)
    _, got = hnsw.search(queries, 10)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)])
    assert recall >= 0.9
    # Decoded 8-bit vectors are close to the float ones (about 1/255 of each dimension's range).
    assert np.abs(hnsw.vectors(np.arange(50)) - vectors[:50]).max() < 0.02

    record = hnsw.save(tmp_path / "dense.faiss")
    loaded = DenseIndex.load(tmp_path / "dense.faiss", "hnsw", record)
    assert loaded.mapped and loaded.params == hnsw.params
    assert loaded.search(queries, 10)[1].tolist() == got.tolist()


def test_a_manifest_without_a_dense_record_loads_with_its_kinds_parameters() -> None:
    assert DenseParams.from_dict({}, "flat") == DenseParams()
    old = DenseParams.from_dict({}, "hnsw")
    assert old.kind == "hnsw" and old.ef_search == 128


def test_a_build_above_dense_exact_max_records_hnsw_and_searches_within_a_document(
    embedder: Embedder, tmp_path: Path
) -> None:
    settings = Settings(
        corpus_dir=CORPUS, index_dir=tmp_path / "index", dense_exact_max=10, dense_train_sample=1000
    )
    build_index(settings, embedder)
    manifest = IndexManifest.read(current_path(settings.index_dir))
    assert manifest.index_type == "hnsw"
    assert manifest.dense == {
        "kind": "hnsw",
        "quantizer": "sq8",
        "hnsw_m": settings.dense_hnsw_m,
        "ef_construction": settings.dense_ef_construction,
        "ef_search": settings.dense_ef_search,
        "train_sample": manifest.passages,  # fewer passages than the sample: all of them
        "nlist": 0,
        "nprobe": 0,
    }
    index = SearchIndex.load(settings)
    assert index.dense.kind == "hnsw" and index.dense.mapped
    rows = np.array([i for i, p in enumerate(index.passages) if p.doc_id == DOC_003])
    query = index.dense_vectors(rows[2:3])
    scores, found = index.dense.search(query, 10, rows=rows)
    assert set(found[0].tolist()) <= set(rows.tolist()) and found[0][0] == rows[2]
    assert np.all(np.diff(scores[0]) <= 0)
