"""The dense index chosen by size: HNSW-SQ8 above ``dense_exact_max``, its parameters in the manifest,
loaded memory-mapped, searched within a document's rows."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest
from conftest import CORPUS, DOC_003

from qa.encoding import Embedder
from qa.index import dense
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


def test_auto_is_exact_up_to_the_threshold_hnsw_above_and_ivf_on_disk_from_ivf_min() -> None:
    assert choose_kind(200_000, "auto", 200_000) == "flat"
    assert choose_kind(200_001, "auto", 200_000) == "hnsw"
    assert choose_kind(10, "ivf", 200_000) == "ivf"
    assert choose_kind(1_999_999, "auto", 200_000, 2_000_000) == "hnsw"
    assert choose_kind(2_000_000, "auto", 200_000, 2_000_000) == "ivf"  # the graph no longer built whole
    assert choose_kind(2_000_000, "hnsw", 200_000, 2_000_000) == "hnsw"
    with pytest.raises(ValueError, match="unknown index type"):
        choose_kind(10, "lsh", 200_000)


def test_hnsw_sq8_finds_the_exact_top10(
    sentence_vectors: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
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
        "on_disk": False,
    }
    index = SearchIndex.load(settings)
    assert index.dense.kind == "hnsw" and index.dense.mapped
    rows = np.array([i for i, p in enumerate(index.passages) if p.doc_id == DOC_003])
    query = index.dense_vectors(rows[2:3])
    scores, found = index.dense.search(query, 10, rows=rows)
    assert set(found[0].tolist()) <= set(rows.tolist()) and found[0][0] == rows[2]
    assert np.all(np.diff(scores[0]) <= 0)


def _ivf_sq8(dim: int, nlist: int) -> faiss.Index:
    """An empty IVF-SQ8 index by inner product, as ``DenseIndex.build`` makes one, to train and fill in memory."""
    return faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )


def test_ivf_is_built_shard_by_shard_into_lists_on_disk_that_load_mapped_from_beside_the_index(
    sentence_vectors: tuple[np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors, queries = sentence_vectors
    monkeypatch.setattr(dense, "IVF_SHARD", 100)  # several shards merged
    monkeypatch.setattr(dense, "ADD_BATCH", 30)  # several batches a shard
    assert len(vectors) > 3 * 100
    ivf = DenseIndex.build(vectors, "ivf", train_sample=len(vectors), scratch=tmp_path)
    assert (
        ivf.params.on_disk
        and ivf.params.quantizer == "sq8"
        and ivf.params.nlist == int(4 * len(vectors) ** 0.5)
    )
    # the same codes and ids as one IVF-SQ8 index of every vector in memory, trained on the same sample
    whole = _ivf_sq8(vectors.shape[1], ivf.params.nlist)
    whole.train(vectors)
    whole.add(vectors)
    whole.nprobe = ivf.params.nprobe
    got, want = ivf.search(queries, 10), whole.search(queries, 10)
    assert np.array_equal(got[1], want[1]) and np.allclose(got[0], want[0])
    _, exact = DenseIndex.build(vectors, "flat").search(queries, 10)
    assert np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got[1], exact, strict=True)]) >= 0.9

    build = tmp_path / "build.partial"
    build.mkdir()
    record = ivf.save(build / "dense.faiss")
    assert sorted(p.name for p in build.iterdir()) == ["dense.faiss", "dense.faiss.ivfdata"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ivf-")] == []  # scratch removed
    final = build.rename(tmp_path / "build")  # as a finished build's folder is renamed
    loaded = DenseIndex.load(final / "dense.faiss", "ivf", record)
    assert loaded.mapped and loaded.params == ivf.params
    assert np.array_equal(loaded.search(queries, 10)[1], got[1])
    assert np.abs(loaded.vectors(np.arange(len(vectors) - 50, len(vectors))) - vectors[-50:]).max() < 0.02
    rows = np.arange(100, 300)
    _, within = loaded.search(queries[:3], 5, rows=rows)
    assert set(within.ravel().tolist()) <= set(rows.tolist())
    (final / "dense.faiss.ivfdata").unlink()
    with pytest.raises(FileNotFoundError, match="IVF lists"):
        DenseIndex.load(final / "dense.faiss", "ivf", record)


def test_an_ivf_index_trains_on_its_sample_mapped_from_a_scratch_file(
    sentence_vectors: tuple[np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The training sample (40 vectors a list, growing as the square root of the corpus) is written a batch at
    a time to an unnamed file and trained on from its map: the same index as one trained on those rows."""
    vectors, queries = sentence_vectors
    monkeypatch.setattr(dense, "IVF_POINTS_PER_LIST", 2)  # a sample smaller than the vectors
    monkeypatch.setattr(dense, "ADD_BATCH", 30)  # written in several batches
    size = 200
    assert len(vectors) > size > 2 * int(4 * len(vectors) ** 0.5)
    sample = dense._mapped_sample(vectors, size, 0, tmp_path)
    rows = dense._sample_rows(len(vectors), size, 0)
    assert (
        isinstance(sample, np.memmap)
        and not sample.flags.writeable
        and sample.shape == (size, vectors.shape[1])
    )
    assert np.array_equal(sample, vectors[rows]) and len(set(rows.tolist())) == size
    assert list(tmp_path.iterdir()) == []  # the file has no name
    del sample

    ivf = DenseIndex.build(vectors, "ivf", train_sample=size, scratch=tmp_path)
    assert ivf.params.train_sample == size
    whole = _ivf_sq8(vectors.shape[1], ivf.params.nlist)
    whole.train(np.ascontiguousarray(vectors[rows]))
    whole.add(vectors)
    whole.nprobe = ivf.params.nprobe
    got, want = ivf.search(queries, 10), whole.search(queries, 10)
    assert np.array_equal(got[1], want[1]) and np.allclose(got[0], want[0])


def test_a_build_with_an_ivf_index_keeps_its_lists_in_the_build(embedder: Embedder, tmp_path: Path) -> None:
    settings = Settings(  # "auto" from dense_ivf_min passages, as a corpus too large for HNSW's graph
        corpus_dir=CORPUS,
        index_dir=tmp_path / "index",
        dense_exact_max=10,
        dense_ivf_min=20,
        dense_train_sample=1000,
    )
    build_index(settings, embedder)
    manifest = IndexManifest.read(current_path(settings.index_dir))
    assert manifest.index_type == "ivf" and manifest.dense["on_disk"] is True
    assert "dense.faiss.ivfdata" in manifest.files  # in the build, checked with its other files
    index = SearchIndex.load(settings)
    assert index.dense.kind == "ivf" and index.dense.mapped
    rows = np.array([i for i, p in enumerate(index.passages) if p.doc_id == DOC_003])
    scores, found = index.dense.search(index.dense_vectors(rows[2:3]), 5, rows=rows)
    assert set(found[0].tolist()) <= set(rows.tolist()) and found[0][0] == rows[2]
