"""The next build from the current one: unchanged documents reused, only new or changed text embedded.

Facts and the vocabulary learned from the documents, the keyword index and the dense index are recomputed
for the whole corpus (they depend on every document); reading and embedding are what a change saves.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from qa.corpus import Corpus, _read_manifest, corpus_hash, file_sha256, load_document
from qa.documents import Document
from qa.encoding import Embedder
from qa.errors import CorpusError, DuplicateDocument, NotFound
from qa.index.build import (
    SOURCES,
    Stopwatch,
    chunk_corpus,
    current_path,
    embed_build,
    finish_build,
    new_build_folder,
    passage_texts,
    sentence_table,
    write_build,
)
from qa.index.dense import DenseIndex
from qa.index.manifest import MANIFEST_NAME, IndexManifest
from qa.index.tables import SENTENCE_VECTORS, STORE_FILE, Passages, RowFile, Sentences, Store, read_documents
from qa.library.journal import Moves
from qa.library.uploads import Staged
from qa.library.vectors import CACHE_FILE, VectorCache, encode_cached
from qa.listing import corpus_files
from qa.settings import Settings

log = logging.getLogger(__name__)
TRASH = "trash"


@dataclass
class NextBuild:
    build: Path
    moves: Moves
    documents: int
    passages: int
    passages_embedded: int
    sentences_embedded: int
    reused_documents: int
    seconds: float
    stage_seconds: dict[str, float]


@dataclass
class Previous:
    """What the current build offers a change: its documents by corpus file, their files' hashes, vectors."""

    documents: dict[str, Document]
    sources: dict[str, str]
    vectors: dict[str, np.ndarray]

    @classmethod
    def load(cls, index_dir: Path, embedder: Embedder, corpus_dir: Path | None = None) -> Previous:
        """The current build's view; a build without sources.json takes its files' hashes from ``corpus_dir``."""
        folder = current_path(index_dir)
        if not (folder / MANIFEST_NAME).exists():
            return cls({}, {}, {})
        manifest = IndexManifest.read(folder)
        docs = read_documents(folder)
        sources_file = folder / SOURCES
        sources = json.loads(sources_file.read_text("utf-8")) if sources_file.exists() else {}
        if not sources_file.exists() and corpus_dir is not None:
            files = [d.meta.file for d in docs if (corpus_dir / d.meta.file).is_file()]
            sources = {rel: file_sha256(corpus_dir / rel) for rel in files}
        vectors: dict[str, np.ndarray] = {}
        if manifest.model_weights_sha256 and manifest.model_weights_sha256 == embedder.weights_sha256:
            vectors = _build_vectors(folder, manifest, {d.id: d for d in docs})
        return cls({d.meta.file: d for d in docs}, sources, vectors)


def _build_vectors(folder: Path, manifest: IndexManifest, docs: dict[str, Document]) -> dict[str, np.ndarray]:
    """Text -> vector for every passage and sentence of a build made with the same weights."""
    out: dict[str, np.ndarray] = {}
    store = Store(folder / STORE_FILE)
    embed_texts = [p.embed_text for p in Passages(store)]
    if embed_texts:
        dense = DenseIndex.load(folder / "dense.faiss", manifest.index_type, manifest.dense)
        # Only an index that stores the float vectors gives them back; HNSW-SQ8's decoded 8-bit vectors
        # would degrade the next build, whose passages then come from the vector cache (a full build puts
        # every vector there) or are embedded again.
        if dense.exact_vectors:
            out.update(zip(embed_texts, dense.vectors(np.arange(len(embed_texts))), strict=True))
    s_vecs = np.load(folder / SENTENCE_VECTORS, mmap_mode="r")
    for s in Sentences(store):
        doc = docs.get(s.doc_id)
        if doc is not None:
            out[doc.text[s.start : s.end]] = np.asarray(s_vecs[s.row], dtype=np.float32)
    return out


def _current_documents(
    corpus_dir: Path, previous: Previous, max_bytes: int
) -> tuple[dict[str, Document], dict[str, str], list[str]]:
    """Every document of the corpus folder now (reused when its bytes are those the current build read)."""
    manifest = _read_manifest(corpus_dir)
    docs: dict[str, Document] = {}
    sources: dict[str, str] = {}
    files = corpus_files(corpus_dir)
    skipped = list(files.skipped)
    try:
        for path in files:
            rel = path.relative_to(corpus_dir).as_posix()
            try:
                digest = file_sha256(path)
                old = previous.documents.get(rel)
                if old is not None and previous.sources.get(rel) == digest:
                    docs[rel] = old
                else:
                    docs[rel] = load_document(path, corpus_dir, manifest.get(rel), max_bytes)
                sources[rel] = digest
            except OSError as exc:
                skipped.append(f"{path}: cannot read ({exc.strerror})")
            except CorpusError as exc:
                skipped.append(exc.message)
    finally:
        files.close()
    return docs, sources, skipped


def build_next(
    settings: Settings,
    embedder: Embedder,
    *,
    add: list[Staged],
    remove: list[str],
    reason: str,
    previous: Previous | None = None,
) -> NextBuild:
    """Build (not yet current) the index of the corpus with ``add`` in it and ``remove`` (ids) out of it.

    The caller holds the build lock and commits the returned moves and build with ``journal.commit``.
    """
    started = time.perf_counter()
    clock = Stopwatch()
    index_dir, corpus_dir = Path(settings.index_dir), Path(settings.corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    previous = previous or Previous.load(index_dir, embedder, corpus_dir)
    clock.lap("previous build")
    docs, sources, skipped = _current_documents(corpus_dir, previous, int(settings.max_file_mb * 1e6))
    reused = sum(1 for rel, d in docs.items() if previous.documents.get(rel) is d)
    moves = Moves()
    trash = index_dir / TRASH / uuid.uuid4().hex
    by_id = {d.id: rel for rel, d in docs.items()}
    for doc_id in remove:
        rel = by_id.pop(doc_id, None)
        if rel is None:
            raise NotFound(f"no document with id '{doc_id}'")
        moves.out.append((corpus_dir / rel, trash / rel))
        del docs[rel], sources[rel]
    for staged in add:
        rel = staged.document.meta.file
        if staged.document.id in by_id:
            raise DuplicateDocument(
                f"{staged.name}: a document with id '{staged.document.id}' is already indexed "
                f"(file {by_id[staged.document.id]}); remove it first, or replace it (PUT)"
            )
        if rel in docs or (corpus_dir / rel).exists() and (corpus_dir / rel) not in {a for a, _ in moves.out}:
            raise DuplicateDocument(f"{staged.name}: a file named {rel} is already in the corpus folder")
        docs[rel] = staged.document
        sources[rel] = staged.sha256
        by_id[staged.document.id] = rel
        moves.into.append((staged.path, corpus_dir / rel))
    documents = [
        docs[rel] for rel in sorted(docs, key=lambda rel: PurePosixPath(rel).parts)
    ]  # as a full build
    if not documents:
        raise CorpusError(f"{corpus_dir}: the change would leave no documents to index")
    corpus = Corpus(corpus_dir, documents, skipped, corpus_hash(corpus_dir, documents))
    clock.lap("read")

    work = new_build_folder(index_dir)
    passages = chunk_corpus(settings, embedder, corpus)
    p_texts = passage_texts(passages)
    s_texts = sentence_table(passages).texts(corpus)
    clock.lap("chunk")
    change: dict[str, object] = {
        "reason": reason,
        "added": [s.document.id for s in add],
        "removed": list(remove),
        "reused_documents": reused,
    }
    embedded_counts: dict[str, int] = {}

    def embed(scratch: Path) -> tuple[RowFile, RowFile]:
        """Only what neither the current build nor the cache has, a batch of texts at a time into row files
        (``embed_build``): a change to a large library holds one batch of vectors, not every one."""
        cache = VectorCache(index_dir / CACHE_FILE, embedder.weights_sha256, embedder.dim)
        embedded: set[str] = set()

        def vectors_of(texts: list[str]) -> np.ndarray:
            vecs, new = encode_cached(texts, embedder.encode_many, cache, previous.vectors)
            embedded.update(new)
            return vecs

        try:
            vectors = embed_build(embedder, p_texts, s_texts, scratch, encode=vectors_of)
        finally:
            cache.close()
        embedded_counts["passages_embedded"] = len(embedded.intersection(p_texts))
        embedded_counts["sentences_embedded"] = len(embedded.intersection(s_texts).difference(p_texts))
        change.update(embedded_counts)  # into the manifest, which is written once the vectors are in
        return vectors

    extra: dict[str, object] = {"change": change}
    files = ((d.meta.file, sources[d.meta.file]) for d in documents)
    write_build(work, settings, embedder, corpus, passages, embed, files, started, extra, clock=clock)
    build = finish_build(work)
    p_new, s_new = embedded_counts["passages_embedded"], embedded_counts["sentences_embedded"]
    log.info(
        "built %s (%s): %d documents, %d passages, %d passages and %d sentences embedded; %s",
        build.name,
        reason,
        len(documents),
        len(passages),
        p_new,
        s_new,
        clock.line(),
    )
    return NextBuild(
        build,
        moves,
        len(documents),
        len(passages),
        p_new,
        s_new,
        reused,
        round(time.perf_counter() - started, 3),
        clock.seconds,
    )
