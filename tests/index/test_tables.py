"""The on-disk store a build reads by row or id: passages, sentences, documents, float16 sentence vectors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import DOC_000

from qa.errors import IndexCorrupt
from qa.index import manifest as manifest_module
from qa.index.manifest import IndexManifest
from qa.index.tables import DOCUMENT_CACHE, SENTENCE_VECTORS, STORE_FILE, RowFile
from qa.services import Services


def test_passages_by_row_id_and_batch_agree_with_a_full_scan(services: Services) -> None:
    index = services.index
    every = list(index.passages)
    assert len(every) == len(index.passages) == index.manifest.passages
    rows = [len(every) - 1, 0, 7, 7, 3]
    assert index.passages.rows(rows) == [every[r] for r in rows]
    assert index.passages[-1] == every[-1] and index.passages[5] == every[5]
    assert index.passage(every[9].id) == every[9]
    with pytest.raises(IndexError):
        index.passages[len(every)]
    ours = [r for r, p in enumerate(every) if p.doc_id == DOC_000]
    assert index.passages.document_rows([DOC_000, "no-such-document"]) == ours
    assert index.passages.count(DOC_000) == len(ours) and index.passages.count("no-such-document") == 0
    assert index.passages.of_document(DOC_000) == [every[r] for r in ours]


def test_sentences_and_their_vectors_are_read_by_row(services: Services) -> None:
    index = services.index
    sentences = list(index.sentences)
    assert len(sentences) == len(index.sentences) == index.manifest.sentences
    assert index.sentences[12] == sentences[12]
    assert (
        isinstance(index.sentence_vectors, RowFile) and index.sentence_vectors.dtype == np.float16
    )  # not mapped
    stored = np.load(index.path / SENTENCE_VECTORS)
    rows = [7, 3, 4, 5, 3, len(stored) - 1, -1]  # out of order, a run, a repeat, the last row, from the end
    assert np.array_equal(index.sentence_vectors[rows], stored[rows])
    assert index.sentence_vectors[[]].shape == (0, stored.shape[1])
    with pytest.raises(IndexError):
        index.sentence_vectors[[len(stored)]]
    block = index.sentence_matrix([3, 1])
    assert block.dtype == np.float32 and np.allclose(np.linalg.norm(block, axis=1), 1.0, atol=1e-2)
    p = index.passages[4]
    rows = index.sentence_rows(p)
    assert [(sentences[r].start, sentences[r].end) for r in rows] == [tuple(s) for s in p.sentences]
    assert list(index.passage_sentences[4][: len(rows)]) == rows


def test_documents_keep_metadata_in_memory_and_read_texts_on_demand(services: Services) -> None:
    docs = services.index.documents
    assert (
        DOC_000 in docs and "no-such-document" not in docs and len(docs) == services.index.manifest.documents
    )
    doc = docs[DOC_000]
    assert doc.meta == docs.metas[DOC_000] and len(doc.text) == docs.lengths[DOC_000] > 1000
    assert docs[DOC_000] is doc  # the LRU keeps it ...
    assert len(docs._cache) <= DOCUMENT_CACHE  # ... and keeps few
    seen: list[str] = []
    worker = threading.Thread(target=lambda: seen.append(docs[DOC_000].text[:50]))  # a thread of its own
    worker.start()
    worker.join()
    assert seen == [doc.text[:50]]


def test_loading_checks_big_files_by_size_and_small_ones_by_hash(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    folder = tmp_path / "build"
    shutil.copytree(services.index.path, folder)
    manifest = IndexManifest.read(folder)
    assert manifest.sizes[STORE_FILE] == (folder / STORE_FILE).stat().st_size
    data = bytearray((folder / STORE_FILE).read_bytes())
    data[-10] ^= 0xFF  # same size, other bytes
    (folder / STORE_FILE).write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        manifest.verify_files(folder)  # small: hashed
    monkeypatch.setattr(manifest_module, "HASH_ON_LOAD_BYTES", 1024)
    manifest.verify_files(folder)  # big now: its size is right, its hash is not read at load ...
    with pytest.raises(IndexCorrupt, match="checksum"):
        manifest.verify_files(folder, full=True)  # ... but is on a full check
    (folder / STORE_FILE).write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(IndexCorrupt, match="truncated"):
        manifest.verify_files(folder)


def test_a_truncated_vector_file_is_an_error_not_garbage(tmp_path: Path) -> None:
    path = tmp_path / "v.npy"
    np.save(path, np.arange(40, dtype=np.float16).reshape(10, 4))
    reader = RowFile(path)
    assert np.array_equal(reader[[9, 0]], np.load(path)[[9, 0]])
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 4)
    with pytest.raises(OSError, match="short read"):
        reader[[9]]
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="2-D"):
        RowFile(path)
