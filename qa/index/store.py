"""A built index loaded into memory: passages, sentences, documents and the dense and keyword indexes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from qa.chunking import Passage
from qa.corpus import corpus_digest
from qa.documents import Document
from qa.encoding import resolve_model, weights_hash
from qa.errors import CorpusError, IndexMismatch, IndexMissing, NotFound
from qa.index.build import MENTIONS, current_path
from qa.index.dense import DenseIndex
from qa.index.keyword import KeywordIndex
from qa.index.manifest import MANIFEST_NAME, IndexManifest
from qa.index.scope import DocumentIds, check_documents
from qa.index.tables import (
    PASSAGE_SENTENCES,
    SENTENCE_VECTORS,
    STORE_FILE,
    Documents,
    Passages,
    RowFile,
    Sentence,
    Sentences,
    Store,
)
from qa.settings import Settings

REBUILD_HINT = "rebuild it with `qa index` (or `make run`, which rebuilds a stale index)"


__all__ = ["SearchIndex", "Sentence", "index_differences"]


def index_differences(settings: Settings, *, check_corpus: bool = True) -> list[str]:
    """Why the index on disk cannot serve these settings; empty when it can."""
    folder = current_path(Path(settings.index_dir))
    if not (folder / MANIFEST_NAME).exists():
        return [f"no index at {settings.index_dir}"]
    manifest = IndexManifest.read(folder)
    corpus_hash = None
    if check_corpus and Path(settings.corpus_dir).is_dir():
        try:
            corpus_hash = corpus_digest(Path(settings.corpus_dir), max_file_mb=settings.max_file_mb)
        except CorpusError as exc:
            return [exc.message]
    return manifest.differences(
        model=settings.model,
        weights=weights_hash(resolve_model(settings.model)),
        chunking=settings.chunking,
        corpus_hash=corpus_hash,
    )


class SearchIndex:
    def __init__(self, path: Path, manifest: IndexManifest) -> None:
        """Opens the build's tables and maps its arrays; only document metadata is read into memory."""
        self.path = path
        self.manifest = manifest
        self.store = Store(path / STORE_FILE)
        self.passages = Passages(self.store)
        self.sentences = Sentences(self.store)
        self.documents = Documents(self.store)
        # sentence vectors read by row (RowFile), the passage -> sentence rows table memory-mapped (as a plain
        # array over the map: np.memmap's subclass costs on every slice)
        self.sentence_vectors = RowFile(path / SENTENCE_VECTORS)
        self.passage_sentences: np.ndarray = np.asarray(np.load(path / PASSAGE_SENTENCES, mmap_mode="r"))
        self.dense = DenseIndex.load(path / "dense.faiss", manifest.index_type, manifest.dense)
        self.keyword = KeywordIndex.load(path / "bm25")
        # token -> sentence rows, memory-mapped (builds before it had none: the answerer makes its own)
        self.mentions = KeywordIndex.load(path / MENTIONS) if (path / MENTIONS).is_dir() else None

    @classmethod
    def load(cls, settings: Settings, *, check_corpus: bool = True, verify: bool = True) -> SearchIndex:
        """Load the current index, refusing one built from other settings or another corpus."""
        folder = current_path(Path(settings.index_dir))
        if not (folder / MANIFEST_NAME).exists():
            raise IndexMissing(f"no index at {settings.index_dir}; {REBUILD_HINT}")
        diffs = index_differences(settings, check_corpus=check_corpus)
        if diffs:
            raise IndexMismatch(
                f"the index at {settings.index_dir} does not match the current settings: "
                + "; ".join(diffs)
                + f". {REBUILD_HINT}",
                detail=diffs,
            )
        manifest = IndexManifest.read(folder)
        real = folder.resolve()
        if verify:
            manifest.verify_files(real)
        return cls(real, manifest)

    def dense_vectors(self, rows: np.ndarray) -> np.ndarray:
        return self.dense.vectors(rows)

    def sentence_rows(self, passage: Passage) -> list[int]:
        """Rows of ``passage``'s sentences in the sentence table (works for merged passages too)."""
        if not passage.sentences:
            return []
        found = self.sentences.rows_in(passage.doc_id, passage.start, passage.end)
        rows = (found.get((a, b)) for a, b in passage.sentences)
        return [r for r in rows if r is not None]

    def sentence_matrix(self, rows: list[int] | np.ndarray) -> np.ndarray:
        """The sentence vectors at ``rows`` as float32 (stored float16)."""
        return np.asarray(self.sentence_vectors[np.asarray(rows, dtype=np.int64)], dtype=np.float32)

    def passage(self, passage_id: str) -> Passage:
        """A stored passage, or a span of adjacent stored passages merged by retrieval ('doc:start-end')."""
        row = self.passages.row_of(passage_id)
        if row is not None:
            return self.passages[row]
        merged = self._merged_passage(passage_id)
        if merged is None:
            raise NotFound(f"no passage with id '{passage_id}'")
        return merged

    def _merged_passage(self, passage_id: str) -> Passage | None:
        doc_id, _, span = passage_id.rpartition(":")
        start_s, _, end_s = span.partition("-")
        if doc_id not in self.documents or not (start_s.isdigit() and end_s.isdigit()):
            return None
        start, end = int(start_s), int(end_s)
        parts = self.passages.of_document(doc_id, start, end)
        if not parts or parts[0].start != start or max(p.end for p in parts) != end:
            return None
        if len({p.section_id for p in parts}) != 1:
            return None
        first = parts[0]
        sentences = sorted({s for p in parts for s in p.sentences})
        text = self.documents[doc_id].text[start:end]
        refs = sorted({r for p in parts for r in p.refs})
        return Passage(
            passage_id, doc_id, first.section_id, first.section, first.kind, start, end, text, refs, sentences
        )

    def document(self, doc_id: str) -> Document:
        doc = self.documents.get(doc_id)
        if doc is None:
            raise NotFound(f"no document with id '{doc_id}'")
        return doc

    def check_documents(self, values: Iterable[str] | None) -> DocumentIds | None:
        """A document filter as given (ids, comma-separated values) checked against the indexed ids:
        None when none was given, UnknownDocument naming any id not indexed."""
        return check_documents(values, self.documents)

    def sentence_text(self, s: Sentence) -> str:
        return self.documents[s.doc_id].text[s.start : s.end]
