"""`qa index --ray`: the same build through a real two-node Ray cluster (a head and a worker node on
127.0.0.1) as in one process: passage ids, texts and offsets identical, vectors equal within 1e-5."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, ROOT, SHARED

from qa.encoding import Embedder
from qa.index.build import build_index, chunk_corpus, sentence_table
from qa.index.manifest import IndexManifest
from qa.index.ray_local import LocalRayCluster
from qa.index.tables import STORE_FILE, Documents, Passages, Sentences, Store
from qa.settings import Settings

pytest.importorskip("ray", reason="ray is not installed (pip install '.[ray]'; the test extra has it)")

JATS = SHARED / "papers" / "jitc2013-cea-peptide-vaccine-pancreatic.xml"


@pytest.mark.slow
def test_ray_build_on_two_nodes_matches_the_single_process_build(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    if JATS.exists():
        shutil.copy(JATS, corpus / JATS.name)
    (corpus / "broken.xml").write_text("<article><body><p>never closed", encoding="utf-8")  # skipped by both
    if sys.platform.startswith("linux"):  # a name that is no UTF-8: left out of the listing by both
        shutil.copyfile(
            CORPUS / next(iter(sorted(os.listdir(CORPUS)))), os.fsencode(corpus) + b"/odd \xff.txt"
        )
    single = build_index(Settings(corpus_dir=corpus, index_dir=tmp_path / "single"), embedder)

    cluster = LocalRayCluster(workers=1)
    with cluster as address:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "qa",
                "index",
                "--corpus",
                str(corpus),
                "--index-dir",
                str(tmp_path / "ray"),
            ]
            + ["--ray", address, "--ray-actors", "2", "--quiet"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env=os.environ | cluster.env,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    distributed = (tmp_path / "ray" / "current").resolve()

    m1, m2 = IndexManifest.read(single), IndexManifest.read(distributed)
    assert m2.extra["ray"]["nodes"] == 2 and m2.extra["ray"]["actors"] == 2
    assert (m2.documents, m2.passages, m2.sentences) == (m1.documents, m1.passages, m1.sentences)
    assert m1.documents == (3 if JATS.exists() else 2)
    assert m2.corpus_hash == m1.corpus_hash
    assert m2.extra["skipped"] == m1.extra["skipped"] and any("broken.xml" in m for m in m1.extra["skipped"])
    assert any("not UTF-8" in m for m in m1.extra["skipped"]) == sys.platform.startswith("linux")
    assert (distributed / "sources.json").read_bytes() == (single / "sources.json").read_bytes()
    store1, store2 = Store(single / STORE_FILE), Store(distributed / STORE_FILE)
    p1, p2 = list(Passages(store1)), list(Passages(store2))
    assert [p.to_dict() for p in p2] == [p.to_dict() for p in p1]  # ids, offsets, texts, sections, pages
    assert list(Sentences(store2)) == list(Sentences(store1))
    docs1, docs2 = Documents(store1), Documents(store2)
    assert sorted(docs2) == sorted(docs1)
    assert all(docs2[d].text == docs1[d].text and docs2[d].meta == docs1[d].meta for d in docs1)
    import faiss

    d1, d2 = faiss.read_index(str(single / "dense.faiss")), faiss.read_index(str(distributed / "dense.faiss"))
    v1, v2 = d1.reconstruct_n(0, d1.ntotal), d2.reconstruct_n(0, d2.ntotal)
    assert v1.shape == v2.shape == (m1.passages, 384)
    assert np.abs(v1 - v2).max() < 1e-5
    s1, s2 = np.load(single / "sentences.npy"), np.load(distributed / "sentences.npy")
    # sentence vectors are stored float16: float32 values within 1e-5 may round one float16 step apart
    assert s1.shape == s2.shape and np.abs(s1.astype(np.float32) - s2.astype(np.float32)).max() < 1e-3


def test_index_without_ray_does_not_import_it(tmp_path: Path) -> None:
    code = (
        "import sys; from qa.cli import main; "
        f"rc = main(['index', '--corpus', {str(CORPUS)!r}, '--index-dir', {str(tmp_path)!r}, '--quiet']); "
        "assert rc == 0; assert 'ray' not in sys.modules, 'ray imported'; print('no ray')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "no ray" in out.stdout


def test_results_taken_in_corpus_order_whatever_order_they_come_in(
    tmp_path: Path, embedder: Embedder
) -> None:
    """The driver's side of the pipeline without a cluster: the workers' results for a real corpus (a JATS
    paper and a file no reader can read beside the seed documents), put in reverse order, make the corpus a
    single-process build reads, and the shards the vectors in its order."""
    from qa.corpus import file_sha256, load_corpus
    from qa.errors import QAError
    from qa.index.distributed import InOrder, _shard_vectors, read_and_chunk
    from qa.listing import corpus_files
    from qa.shelf import DocumentShelf

    root = tmp_path / "corpus"
    shutil.copytree(CORPUS, root)
    if JATS.exists():
        shutil.copy(JATS, root / JATS.name)
    (root / "broken.xml").write_text("<article><body><p>never closed", encoding="utf-8")
    settings = Settings(corpus_dir=root, index_dir=tmp_path / "index")
    files = corpus_files(root)
    rows = []
    for i, name in enumerate(files.names):
        row = read_and_chunk(
            {"index": i, "path": name},
            root=str(root),
            model=settings.model,
            settings_json=settings.model_dump_json(),
        )
        texts = pickle.loads(row["texts"])
        vectors = embedder.encode_many(texts, workers=1) if texts else np.zeros((0, embedder.dim), np.float32)
        rows.append((i, row["payload"], *row["counts"], vectors.astype(np.float32).tobytes()))
    expected = load_corpus(root)
    order = [d.id for d in expected.documents]
    want_passages = chunk_corpus(settings, embedder, expected)
    shards = tmp_path / "shards"
    shards.mkdir()
    shelf = DocumentShelf(tmp_path)
    results = InOrder(root, len(files), shelf, shards)
    try:
        for row in reversed(rows):
            results.put(*row)
        with pytest.raises(QAError, match="out of place"):
            results.put(*rows[0])
        corpus = results.corpus()
        assert [d.id for d in corpus.documents] == order
        assert corpus.hash == expected.hash and corpus.skipped == expected.skipped
        assert len(corpus.skipped) == 1 and "broken.xml" in corpus.skipped[0]
        assert corpus.sources is not None
        assert list(corpus.sources) == [
            (d.meta.file, file_sha256(root / d.meta.file)) for d in expected.documents
        ]
        passages = results.passages
        assert [p.to_dict() for p in passages] == [p.to_dict() for p in want_passages]
        p_vecs, s_vecs = _shard_vectors(shards, results.totals, embedder.dim, tmp_path)
        assert (len(p_vecs), len(s_vecs)) == results.totals == (len(passages), len(sentence_table(passages)))
        last = len(passages) - 1
        assert (
            np.abs(p_vecs[last] - embedder.encode_many([passages[last].embed_text], workers=1)[0]).max()
            < 1e-5
        )
    finally:
        results.close()
        shelf.close()


def test_a_result_missing_from_the_pipeline_fails_the_build(tmp_path: Path) -> None:
    from qa.errors import QAError
    from qa.index.distributed import InOrder
    from qa.shelf import DocumentShelf

    shelf = DocumentShelf(tmp_path)
    results = InOrder(CORPUS, 2, shelf, tmp_path)
    try:
        results.put(1, pickle.dumps((None, "one.txt: unreadable", [], "")), 0, 0, b"")
        with pytest.raises(QAError, match="1 of 2 corpus files came back without a result"):
            results.corpus()
    finally:
        results.close()
        shelf.close()


def test_the_pipeline_sets_ray_datas_order_and_progress_only_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    import ray

    import qa.index.distributed as distributed
    from qa.listing import corpus_files
    from qa.shelf import DocumentShelf

    context, ray_log = ray.data.DataContext.get_current(), logging.getLogger("ray.data")
    monkeypatch.setattr(context.execution_options, "preserve_order", False)
    monkeypatch.setattr(context, "enable_progress_bars", True)
    monkeypatch.setattr(ray_log, "level", logging.INFO)
    seen = []

    def failing_stream(*args: object, **kwargs: object) -> int:  # the pipeline failing part way
        seen.append((context.execution_options.preserve_order, context.enable_progress_bars, ray_log.level))
        raise RuntimeError("a worker died")

    monkeypatch.setattr(distributed, "_stream", failing_stream)
    shelf = DocumentShelf(tmp_path)
    results = distributed.InOrder(CORPUS, 2, shelf, tmp_path)
    try:
        with pytest.raises(RuntimeError, match="a worker died"):
            distributed._run_pipeline(
                Settings(), corpus_files(CORPUS), results, actors=1, gpus=0, progress=False
            )
    finally:
        results.close()
        shelf.close()
    assert seen == [(True, False, logging.WARNING)]
    assert (context.execution_options.preserve_order, context.enable_progress_bars, ray_log.level) == (
        False,
        True,
        logging.INFO,
    )
