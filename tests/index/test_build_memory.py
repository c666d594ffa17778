"""The pieces that keep a build's memory to a batch: vectors as row files on disk, the sentence table as
columns, BM25 from a stream of texts and written a batch at a time, the documents on a shelf on disk. Each
gives what the whole-in-memory form it replaced gave."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path

import bm25s
import numpy as np
import pytest
from conftest import CORPUS
from readers.paperset import PAPERS, PDF_PAPERS, XML_PAPERS, require_papers

from qa.chunking import Passage, chunk_document
from qa.columns import Column
from qa.corpus import Corpus, file_sha256, load_corpus, load_document
from qa.documents import Document
from qa.encoding import Embedder
from qa.facts.extract import PassageFinder
from qa.index import build
from qa.index.build import chunk_corpus, embed_build, sentence_table
from qa.index.dense import DenseIndex
from qa.index.keyword import K1, B, KeywordIndex, tokenize
from qa.index.tables import RowFile, RowWriter
from qa.library.vectors import CACHE_FILE, VectorCache
from qa.passage_table import PassageTable
from qa.settings import Settings
from qa.shelf import DocumentShelf


@pytest.fixture(scope="module")
def passages(embedder: Embedder) -> list[Passage]:
    return chunk_corpus(Settings(), embedder, load_corpus(CORPUS))


def test_rows_written_in_blocks_read_back_by_slice_and_by_row(tmp_path: Path) -> None:
    data = np.random.default_rng(0).standard_normal((1000, 7)).astype(np.float32)
    path = tmp_path / "rows.npy"
    with RowWriter(path, data.shape) as out:
        for at in (600, 0, 300):  # any order
            out.write(at, data[at : at + 300] if at < 600 else data[600:])
    assert np.array_equal(np.load(path), data)  # a plain .npy file
    rows = RowFile(path)
    assert np.array_equal(rows[:], data) and np.array_equal(rows[250:750], data[250:750])
    assert np.array_equal(rows[990:5000], data[990:]) and rows[5:5].shape == (0, 7)
    assert np.array_equal(rows[::100], data[::100]) and np.array_equal(rows[[7, 3, 7]], data[[7, 3, 7]])
    with pytest.raises(IndexError, match="out of range"):
        RowWriter(tmp_path / "small.npy", (10, 7)).write(8, data[:3])


def test_the_sentence_table_is_the_unique_sentences_of_the_passages(passages: list[Passage]) -> None:
    table = sentence_table(passages)
    seen: dict[tuple[str, int, int], int] = {}
    for i, p in enumerate(passages):  # the dict-per-sentence table it replaced, built again here
        rows = [seen.setdefault((p.doc_id, s, e), len(seen)) for s, e in p.sentences]
        assert table.of_passage(i) == rows
    assert len(table) == len(seen) < sum(len(p.sentences) for p in passages)  # overlap repeats sentences
    for (doc_id, start, end), row in seen.items():
        assert (table[row]["doc_id"], table[row]["start"], table[row]["end"]) == (doc_id, start, end)
    padded = table.passage_table()
    assert padded.shape[0] == len(passages)
    assert all(list(padded[i][padded[i] >= 0]) == table.of_passage(i) for i in range(len(passages)))
    scattered = [passages[0], passages[-1], passages[1]]  # a document's passages apart
    assert passages[0].doc_id == passages[1].doc_id != passages[-1].doc_id
    with pytest.raises(ValueError, match="one after another"):
        sentence_table(scattered)


def test_bm25_from_a_stream_scores_as_bm25s_from_token_lists(passages: list[Passage]) -> None:
    corpus = load_corpus(CORPUS)
    texts = list(sentence_table(passages).texts(corpus)) + [""]  # an empty text scores nothing
    streamed = KeywordIndex.build(iter(texts))
    model = bm25s.BM25(k1=K1, b=B, method="lucene")
    model.index([tokenize(t) or [""] for t in texts], show_progress=False)
    listed = KeywordIndex(model)
    for query in (
        "TLR9 agonist with pembrolizumab",
        "PD-L1 expression on tumour cells",
        "CD8+ T cells",
        "zzz",
    ):
        assert np.allclose(streamed.scores(query), listed.scores(query), atol=0)
    for token in tokenize("overall survival melanoma PD-1"):
        assert np.array_equal(streamed.rows_with(token), listed.rows_with(token))


@pytest.fixture(scope="module")
def keyword_texts(passages: list[Passage], embedder: Embedder) -> list[str]:
    """The seed passages, the real papers' passages, the seed sentences and an empty text."""
    papers = [
        p for d in _papers() for p in chunk_document(d, embedder.count_tokens, max_tokens=200, overlap=1)
    ]
    texts = [p.keyword_text for p in [*passages, *papers]] + list(
        sentence_table(passages).texts(load_corpus(CORPUS))
    )
    texts.insert(len(texts) // 2, "")  # a text without a token (bm25s's empty token holds it)
    return texts


@pytest.mark.parametrize("batch_tokens", [1, 997, 10**9])  # a text a batch, texts across batches, one batch
def test_bm25_written_a_batch_at_a_time_is_bm25s_whole_build_byte_for_byte(
    keyword_texts: list[str], tmp_path: Path, batch_tokens: int
) -> None:
    texts = keyword_texts
    KeywordIndex.build(texts).save(tmp_path / "whole")
    KeywordIndex.write(iter(texts), tmp_path / "batched", batch_tokens=batch_tokens)
    whole = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert sorted(p.name for p in (tmp_path / "batched").iterdir()) == whole  # no scratch file left
    assert {"data.csc.index.npy", "indices.csc.index.npy", "vocab.index.json"} <= set(whole)
    for name in whole:
        assert (tmp_path / "batched" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    loaded = KeywordIndex.load(tmp_path / "batched")
    assert loaded.model.scores["num_docs"] == len(texts)
    scores, rows = loaded.search("TLR9 agonist with pembrolizumab", 5)
    assert len(rows) == 5 and scores[0] > scores[-1] > 0 and "tlr9" in texts[rows[0]].lower()


def test_vectors_embedded_to_row_files_index_as_vectors_in_memory(
    passages: list[Passage], embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p_texts = [p.embed_text for p in passages]
    s_texts = list(sentence_table(passages).texts(load_corpus(CORPUS)))
    assert len(p_texts) % 50 and len(p_texts) + len(s_texts) > 200  # a batch holds passages and sentences
    monkeypatch.setattr(build, "VECTOR_BATCH", 50)
    p_rows, s_rows = embed_build(embedder, p_texts, s_texts, tmp_path, cache=tmp_path)
    whole = embedder.encode_many(p_texts + s_texts)
    cache = VectorCache(tmp_path / CACHE_FILE, embedder.weights_sha256, embedder.dim)
    cached = cache.get(p_texts + s_texts)
    cache.close()
    assert set(cached) == set(p_texts + s_texts)  # every text's vector in the cache, batch by batch
    assert np.allclose(np.stack([cached[t] for t in s_texts]), whole[len(p_texts) :], atol=1e-5)
    assert p_rows.shape == (len(p_texts), embedder.dim) and s_rows.shape == (len(s_texts), embedder.dim)
    assert np.allclose(p_rows[:], whole[: len(p_texts)], atol=1e-5)
    assert np.allclose(s_rows[:], whole[len(p_texts) :], atol=1e-5)
    queries = s_rows[:20]
    for kind in ("flat", "hnsw"):
        from_file = DenseIndex.build(p_rows, kind, train_sample=100).search(queries, 5)  # type: ignore[arg-type]
        from_memory = DenseIndex.build(p_rows[:], kind, train_sample=100).search(queries, 5)  # type: ignore[arg-type]
        assert np.array_equal(from_file[1], from_memory[1])


def _papers() -> list[Document]:
    require_papers()
    return [load_document(p, PAPERS, None, 20_000_000) for p in [*XML_PAPERS, *PDF_PAPERS]]


def test_the_passage_table_reads_back_the_passages_it_was_given(embedder: Embedder) -> None:
    docs = [*load_corpus(CORPUS).documents, *_papers()]  # PDF pages, JATS captions and tables
    table = PassageTable()
    made: list[Passage] = []
    for doc in docs:
        doc_passages = chunk_document(doc, embedder.count_tokens, max_tokens=200, overlap=1)
        table.add(doc, doc_passages)
        made.extend(doc_passages)
    assert len(table) == len(made) > 500
    assert list(table) == made and table[-1] == made[-1] and table[3:9] == made[3:9]
    assert {p.kind for p in made} >= {"body", "caption", "table"} and any(p.page for p in made)
    for i, p in enumerate(made):  # the column readers make no Passage, and agree with it
        assert (table.doc_id(i), table.passage_id(i), table.kind(i)) == (p.doc_id, p.id, p.kind)
        assert table.span(i) == (p.start, p.end) and table.sentences(i) == p.sentences
    first = made[0].doc_id
    assert [made[i] for i in table.rows_of(first)] == [p for p in made if p.doc_id == first]
    assert table.rows_of("no such document") == range(0)
    table[0].section.append("changed")  # each read is a new Passage: changing one changes no other
    assert table[0] == made[0] and PassageTable.of(docs, made)[:] == made
    with pytest.raises(IndexError):
        table[len(made)]
    with pytest.raises(ValueError, match="one after another"):
        table.add(docs[0], [])
    edited = replace(made[0], text=made[0].text.upper())
    with pytest.raises(ValueError, match="is not the span"):
        PassageTable().add(docs[0], [edited])
    # the whole build path keeps its passages so, and the sentence table reads their columns
    chunked = chunk_corpus(Settings(), embedder, load_corpus(CORPUS))
    assert isinstance(chunked, PassageTable)
    assert list(sentence_table(chunked)) == list(sentence_table(list(chunked)))


def test_tables_over_a_shelf_spill_their_columns_and_read_as_tables_in_memory(
    embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Column, "BUFFER", 50)  # every column spills many times over
    docs = [*load_corpus(CORPUS).documents, *_papers()]
    shelf = DocumentShelf(tmp_path)
    try:
        for doc in docs:
            shelf.append(doc)
        spilled, held = PassageTable(shelf), PassageTable()
        for doc in docs:
            chunked = chunk_document(doc, embedder.count_tokens, max_tokens=200, overlap=1)
            spilled.add(doc, chunked)
            held.add(doc, chunked)
        assert spilled.spilled and all(c.spilled and c.held < 50 for c in spilled._columns)
        assert len(spilled) == len(held) > 500 and list(spilled) == list(held)
        assert list(tmp_path.iterdir()) == []  # scratch files without names
        on_disk, in_memory = sentence_table(spilled), sentence_table(held)
        assert all(c.spilled and c.held < 50 for c in on_disk._columns)
        assert not any(c.spilled for c in in_memory._columns)
        assert len(on_disk) == len(in_memory) > 1000 and list(on_disk) == list(in_memory)
        assert all(on_disk.of_passage(i) == in_memory.of_passage(i) for i in range(len(held)))
        padded = in_memory.passage_table()
        monkeypatch.setattr(build, "VECTOR_BATCH", 64)  # the saved table is written 64 passages at a time
        on_disk.save_passage_table(tmp_path / "table.npy")
        assert np.array_equal(np.load(tmp_path / "table.npy"), padded)
        assert np.array_equal(on_disk.passage_table(), padded)
        texts = list(on_disk.texts(Corpus(CORPUS, shelf)))
        assert texts == list(in_memory.texts(Corpus(CORPUS, docs))) and all(texts)
    finally:
        shelf.close()


def test_the_passage_finder_finds_from_the_table_what_it_finds_from_a_list(embedder: Embedder) -> None:
    docs = _papers()
    made = [p for d in docs for p in chunk_document(d, embedder.count_tokens, max_tokens=200, overlap=1)]
    table = PassageTable.of(docs, made)
    from_table, from_list = PassageFinder(table), PassageFinder(made)
    from_table.DOCUMENTS = 2  # documents leave its cache and come back
    asked = [(p.doc_id, s, e) for p in made for s, e in p.sentences]
    asked += [(p.doc_id, p.start + 1, p.end - 1) for p in made]  # inside a passage, not a sentence
    asked += [(p.doc_id, p.end - 2, p.end + 40) for p in made]  # across two passages
    asked += [("no such document", 0, 10), (made[0].doc_id, 10**9, 10**9 + 5)]
    found = [from_table.find(*q) for q in asked]
    assert found == [from_list.find(*q) for q in asked]
    ids = {p.id for p in made}
    assert all(f in ids for f in found[: len(made)]) and found[-1] == f"{made[0].doc_id}:{10**9}-{10**9 + 5}"


def _read_in_child(shelf: DocumentShelf, row: int, out: Connection) -> None:
    out.send((shelf[row].id, shelf[row].text[:200]))
    out.close()


def test_documents_on_the_shelf_read_back_as_they_were_read(embedder: Embedder, tmp_path: Path) -> None:
    listed = load_corpus(CORPUS)
    docs = [*listed.documents, *_papers()]  # PDF pages, JATS sections, tables and references
    shelf = DocumentShelf(tmp_path)
    try:
        for doc in docs:
            shelf.append(doc)
        assert os.fstat(shelf._file.fileno()).st_nlink == 0  # no name: a killed build leaves no file
        assert list(tmp_path.iterdir()) == [] and shelf.nbytes > sum(len(d.text) for d in docs)
        assert (
            len(shelf) == len(docs)
            and list(shelf) == docs
            and shelf[-1] == docs[-1]
            and shelf[1:3] == docs[1:3]
        )
        assert shelf.get(docs[2].id) == docs[2] and shelf.get("no such document") is None
        assert len(shelf._kept) <= DocumentShelf.KEEP
        with pytest.raises(IndexError):
            shelf[len(docs)]
        context = multiprocessing.get_context("fork")  # the build steps' process reads the parent's shelf
        reader, writer = context.Pipe(duplex=False)
        child = context.Process(target=_read_in_child, args=(shelf, len(docs) - 1, writer))
        child.start()
        assert reader.recv() == (docs[-1].id, docs[-1].text[:200])
        child.join(30)
        with ThreadPoolExecutor(4) as pool:  # threads read side by side (pread: no shared file position)
            assert list(pool.map(lambda i: shelf[i], [*range(len(docs))] * 3)) == docs * 3

        table, listed_table = PassageTable(shelf), PassageTable()  # a table over the shelf holds no document
        for doc in docs[:3]:
            chunked = chunk_document(doc, embedder.count_tokens, max_tokens=200, overlap=1)
            table.add(doc, chunked)
            listed_table.add(doc, chunked)
        assert table._docs == [] and list(table) == list(listed_table)
        assert [shelf.id_of(i) for i in range(len(docs))] == [d.id for d in docs]
        for doc in docs[:4]:  # (the fourth has no passages in the tables)
            assert table.rows_of(doc.id) == listed_table.rows_of(doc.id)
            assert [table.document(i) for i in table.rows_of(doc.id)] == [doc] * len(table.rows_of(doc.id))
        assert len(table.rows_of(docs[2].id)) > 0 and table.rows_of(docs[3].id) == range(0)
        with pytest.raises(ValueError, match="not on the table's shelf"):
            PassageTable(DocumentShelf(tmp_path)).add(docs[0], [])
    finally:
        shelf.close()

    shelved = load_corpus(CORPUS, shelf=DocumentShelf(tmp_path))  # a build's corpus, read onto a shelf
    assert isinstance(shelved.documents, DocumentShelf) and shelved.hash == listed.hash
    assert list(shelved.documents) == list(listed.documents)
    assert shelved.get(listed.documents[1].id) == listed.documents[1]
    for corpus in (listed, shelved):  # each document's file and its bytes' sha256, taken as it was read
        assert corpus.sources is not None
        assert list(corpus.sources) == [
            (d.meta.file, file_sha256(CORPUS / d.meta.file)) for d in listed.documents
        ]
        corpus.close()
    shelved.documents.close()


def test_sources_json_is_what_json_dumps_writes_of_the_sources(tmp_path: Path) -> None:
    sources = {"a.txt": "0" * 64, 'nested/bé "q".xml': "f" * 64, "z.pdf": "1" * 64}
    build.write_sources(tmp_path / "sources.json", iter(sources.items()))
    assert (tmp_path / "sources.json").read_text("utf-8") == json.dumps(sources)
    build.write_sources(tmp_path / "empty.json", [])
    assert json.loads((tmp_path / "empty.json").read_text()) == {}
