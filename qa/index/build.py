"""Build an index from a corpus folder and swap it in atomically: a killed build leaves the old one serving."""

from __future__ import annotations

import fcntl
import gc
import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from qa.chunking import Passage, chunk_document
from qa.columns import Column
from qa.corpus import Corpus, file_sha256, load_corpus
from qa.encoding import Embedder
from qa.errors import BuildFailed
from qa.index.dense import DenseIndex, Kind, Rows, choose_kind
from qa.index.keyword import KeywordIndex
from qa.index.manifest import IndexManifest, tokenizer_signature
from qa.index.tables import PASSAGE_SENTENCES, SENTENCE_VECTORS, STORE_FILE, RowFile, RowWriter, write_store
from qa.library.vectors import CACHE_FILE, VectorCache
from qa.passage_table import PassageTable, doc_id_of, id_and_kind, sentence_spans
from qa.references import REFERENCES_DB, StoredReferences
from qa.settings import Settings
from qa.shelf import DocumentShelf, rows_by_id

log = logging.getLogger(__name__)

MENTIONS = "mentions"  # which sentences hold each token: a BM25 index over sentences, read for its postings

CURRENT = "current"
BUILDS = "builds"
SOURCES = "sources.json"  # corpus file -> sha256 of its bytes
VECTOR_BATCH = 50_000  # vectors converted or cached at a time
# Index-time steps that add files to a build folder (the facts extractor registers one).
BuildStep = Callable[[Path, Corpus, Sequence[Passage]], None]
BUILD_STEPS: list[BuildStep] = []


def current_path(index_dir: Path) -> Path:
    return index_dir / CURRENT


class Stopwatch:
    """Seconds per stage of a build, in order (logged, and kept in the manifest's ``extra``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + now - self._last, 3)
        self._last = now

    def line(self) -> str:
        return stage_line(self.seconds)


def stage_line(seconds: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}s" for k, v in seconds.items())


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("qa", "torch", "sentence-transformers", "faiss-cpu", "bm25s", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


@contextmanager
def build_lock(index_dir: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the index folder's file lock (one writer across processes: `qa index`, `qa add`, the server);
    waits up to ``wait`` seconds for another writer to finish, then refuses with ChangeConflict."""
    from qa.errors import ChangeConflict

    index_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with open(index_dir / ".build.lock", "w") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ChangeConflict(
                        f"{index_dir}: another build or document change is running; try again when it ends"
                    ) from None
                time.sleep(0.05)
        yield


class SentenceTable:
    """The unique sentences across a build's passages (overlap repeats them), in order, and each passage's
    sentence rows. Kept as columns of machine integers, not a dict per sentence (2.3 million of them at 10^6
    passages: 0.7 GB as dicts), spilled to scratch files where the passages' columns are (a table over a
    build's shelf: ``qa.columns``); a row reads as the dict the store is written from. A document's passages
    come one after another (as chunked), so sentences are told apart within one document at a time."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = passages
        spill = isinstance(passages, PassageTable) and passages.spilled
        folder = passages.folder if isinstance(passages, PassageTable) else None
        self._columns = starts, ends, owners, rows, offsets = tuple(
            Column(code, spill=spill, folder=folder) for code in ("q", "q", "i", "i", "q")
        )  # owner: the first passage row with the sentence; passage i's rows: rows[offsets[i]:offsets[i + 1]]
        offsets.append(0)
        doc: str | None = None
        seen: dict[tuple[int, int], int] = {}
        done: set[str] | None = None if isinstance(passages, PassageTable) else set()  # a table checked it
        new: tuple[list[int], list[int], list[int], list[int], list[int]] = ([], [], [], [], [])
        first = 0  # the document's first sentence row
        for i, (doc_id, spans) in enumerate(sentence_spans(passages)):
            if doc_id != doc:
                if done is not None:
                    if doc_id in done:
                        raise ValueError(f"the passages of document {doc_id} do not come one after another")
                    if doc is not None:
                        done.add(doc)
                first += len(new[0])
                self._add(new)
                doc, seen = doc_id, {}
            for start, end in spans:
                row = seen.get((start, end))
                if row is None:
                    row = seen[(start, end)] = first + len(new[0])
                    new[0].append(start)
                    new[1].append(end)
                    new[2].append(i)
                new[3].append(row)
            new[4].append(len(rows) + len(new[3]))
        self._add(new)
        self.starts, self.ends, self.owners, self._rows, self._offsets = (c.view() for c in self._columns)

    def _add(self, new: tuple[list[int], ...]) -> None:
        """A document's items put in the columns at once (then emptied for the next)."""
        for column, items in zip(self._columns, new, strict=True):
            column.extend(items)
            items.clear()

    def __len__(self) -> int:
        return len(self.starts)

    def doc_id(self, row: int) -> str:
        return doc_id_of(self.passages, self.owners[row])

    def __getitem__(self, row: int) -> dict[str, object]:
        passage, kind = id_and_kind(self.passages, self.owners[row])  # a table's: no Passage per sentence
        return {
            "doc_id": self.doc_id(row),
            "start": self.starts[row],
            "end": self.ends[row],
            "passage_id": passage,
            "kind": kind,
        }

    def __iter__(self) -> Iterator[dict[str, object]]:
        return (self[row] for row in range(len(self)))

    def of_passage(self, i: int) -> list[int]:
        """The sentence rows of passage row ``i``."""
        return self._rows[self._offsets[i] : self._offsets[i + 1]].tolist()

    def passage_table(self) -> np.ndarray:
        """Every passage's sentence rows as one -1 padded int32 table (row i: passage row i's)."""
        return self._passage_rows(0, len(self._offsets) - 1, self._widest())

    def save_passage_table(self, path: Path) -> None:
        """``passage_table()`` written to a ``.npy`` file ``VECTOR_BATCH`` passages at a time (never whole)."""
        n, width = len(self._offsets) - 1, self._widest()
        with RowWriter(path, (n, width), np.int32) as out:
            for at in range(0, n, VECTOR_BATCH):
                out.write(at, self._passage_rows(at, min(n, at + VECTOR_BATCH), width))

    def _widest(self) -> int:
        """The most sentences a passage has (1 for none: the table keeps a column)."""
        widest, n = 0, len(self._offsets) - 1
        for at in range(0, n, VECTOR_BATCH):
            offsets = self._columns[4].numpy(at, min(n, at + VECTOR_BATCH) + 1)
            widest = max(widest, int(np.diff(offsets).max(initial=0)))
        return widest or 1

    def _passage_rows(self, first: int, stop: int, width: int) -> np.ndarray:
        """Passage rows ``first:stop``'s sentence rows, -1 padded to ``width``."""
        offsets = self._columns[4].numpy(first, stop + 1)
        rows = (
            self._columns[3].numpy(int(offsets[0]), int(offsets[-1]))
            if len(offsets)
            else np.empty(0, np.int32)
        )
        counts = np.diff(offsets)
        table = np.full((len(counts), width), -1, dtype=np.int32)
        columns = np.arange(len(rows)) - np.repeat(offsets[:-1] - offsets[0], counts)
        table[np.repeat(np.arange(len(counts)), counts), columns] = rows
        return table

    def texts(self, corpus: Corpus) -> LazyTexts:
        """Each sentence's text, sliced from its document as asked for (a build's: read from its shelf)."""
        documents, rows, table = corpus.documents, rows_by_id(corpus.documents), self.passages

        def text(row: int) -> str:
            if isinstance(table, PassageTable):  # the owner passage's document, by number: no id looked up
                return table.document(self.owners[row]).text[self.starts[row] : self.ends[row]]
            return documents[rows[self.doc_id(row)]].text[self.starts[row] : self.ends[row]]

        return LazyTexts(len(self), text)


def sentence_table(passages: Sequence[Passage]) -> SentenceTable:
    return SentenceTable(passages)


def passage_texts(passages: Sequence[Passage]) -> LazyTexts:
    """Each passage's text for the model (``Passage.embed_text``), made as asked for."""
    return LazyTexts(len(passages), lambda row: passages[row].embed_text)


@dataclass(frozen=True)
class LazyTexts:
    """``length`` texts made one at a time as asked for (``get(row)``), never all held: a large build's
    passage and sentence texts for the model (10^6 passages and their sentences: ~0.8 GB of strings)."""

    length: int
    get: Callable[[int], str]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, row: int) -> str:
        return self.get(row)

    def __iter__(self) -> Iterator[str]:
        return (self.get(row) for row in range(self.length))


def build_index(
    settings: Settings,
    embedder: Embedder,
    *,
    corpus_dir: Path | None = None,
    corpus: Corpus | None = None,
    progress: bool = False,
) -> Path:
    """Read, chunk, embed and index ``corpus_dir``; returns the new build folder, now current."""
    started = time.perf_counter()
    if corpus is not None:
        return _build(settings, embedder, corpus, started, progress)
    with shelved_corpus(settings, corpus_dir) as corpus:
        return _build(settings, embedder, corpus, started, progress)


@contextmanager
def shelved_corpus(settings: Settings, corpus_dir: Path | None = None) -> Iterator[Corpus]:
    """``corpus_dir`` (or the settings') read onto a shelf of scratch files beside the index, one document
    in memory at a time, for a build to read back by row; the scratch files go when the block ends."""
    index_dir = Path(settings.index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    shelf = DocumentShelf(index_dir)  # the documents on disk beside the index, not in memory
    try:
        corpus = load_corpus(
            Path(corpus_dir or settings.corpus_dir), max_file_mb=settings.max_file_mb, shelf=shelf
        )
        try:
            yield corpus
        finally:
            corpus.close()
    finally:
        shelf.close()


def _build(settings: Settings, embedder: Embedder, corpus: Corpus, started: float, progress: bool) -> Path:
    index_dir = Path(settings.index_dir)
    for message in corpus.skipped:
        log.warning("skipped: %s", message)
    with build_lock(index_dir):
        clock = Stopwatch()
        work = new_build_folder(index_dir)
        passages = chunk_corpus(settings, embedder, corpus, progress=progress)
        texts = sentence_table(passages).texts(corpus)
        clock.lap("chunk")
        if progress:
            print(f"embedding {len(passages)} passages and {len(texts)} sentences", flush=True)
        p_texts = passage_texts(passages)

        def embed(scratch: Path) -> tuple[Rows, Rows]:
            return embed_build(embedder, p_texts, texts, scratch, cache=index_dir, progress=progress)

        return assemble_build(settings, embedder, work, corpus, passages, embed, started, clock)


def assemble_build(
    settings: Settings,
    embedder: Embedder,
    work: Path,
    corpus: Corpus,
    passages: Sequence[Passage],
    embed: Embed,
    started: float,
    clock: Stopwatch,
    extra: dict[str, object] | None = None,
) -> Path:
    """Write a full build of ``corpus`` into ``work``, make it current and prune old builds (under the
    build lock): the tail of every full build, in one process or on Ray (``qa.index.distributed``)."""
    index_dir = Path(settings.index_dir)
    sources: Iterable[tuple[str, str]] = (
        corpus.sources
        if corpus.sources is not None
        else ((d.meta.file, file_sha256(corpus.root / d.meta.file)) for d in corpus.documents)
    )
    write_build(work, settings, embedder, corpus, passages, embed, sources, started, extra, clock=clock)
    final = finish_build(work)
    log.info("built %s: %s", final.name, clock.line())
    swap_current(index_dir, final)
    prune_builds(index_dir, keep={final.name})
    return final


def new_build_folder(index_dir: Path) -> Path:
    """A fresh ``builds/<id>.partial`` folder (stale partial folders of killed builds are removed first)."""
    builds = index_dir / BUILDS
    builds.mkdir(parents=True, exist_ok=True)
    for stale in [*builds.glob("*.partial"), *builds.glob("*" + SCRATCH)]:
        shutil.rmtree(stale, ignore_errors=True)
    build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    work = builds / f"{build_id}.partial"
    work.mkdir()
    return work


def chunk_corpus(
    settings: Settings, embedder: Embedder, corpus: Corpus, *, progress: bool = False
) -> PassageTable:
    """Every document's passages, in corpus order, as columns over the documents' texts."""
    shelf = corpus.documents if isinstance(corpus.documents, DocumentShelf) else None
    passages = PassageTable(shelf)
    for doc in tqdm(corpus.documents, desc="chunking", unit="doc", disable=not progress):
        passages.add(
            doc,
            chunk_document(
                doc,
                embedder.count_tokens,
                max_tokens=settings.chunk_max_tokens,
                overlap=settings.chunk_overlap_sentences,
            ),
        )
    return passages


def embed_build(
    embedder: Embedder,
    passages: Sequence[str] | LazyTexts,
    sentences: Sequence[str] | LazyTexts,
    scratch: Path,
    *,
    cache: Path | None = None,
    encode: Callable[[list[str]], np.ndarray] | None = None,
    progress: bool = False,
) -> tuple[RowFile, RowFile]:
    """Passage and sentence vectors as float32 row files in ``scratch``, embedded ``VECTOR_BATCH`` texts at
    a time (passages, then sentences; each batch in length-sorted passes, ``Embedder.encode_many``) and put
    in the vector cache of the index folder ``cache``, if given: memory holds one batch of vectors, never
    every one (5 GB at 10^6 passages and their sentences). ``encode`` gives a batch's vectors in its place
    (a change's ``encode_cached``: the current build's and the cache's, the rest embedded)."""
    n_passages, total = len(passages), len(passages) + len(sentences)
    files = (
        RowWriter(scratch / "passages.f32.npy", (n_passages, embedder.dim)),
        RowWriter(scratch / "sentences.f32.npy", (len(sentences), embedder.dim)),
    )
    store = VectorCache(cache / CACHE_FILE, embedder.weights_sha256, embedder.dim) if cache else None
    try:
        with tqdm(total=total, desc="embedding", unit="text", disable=not progress) as bar:
            for at in range(0, total, VECTOR_BATCH):
                rows = range(at, min(total, at + VECTOR_BATCH))
                texts = [passages[i] if i < n_passages else sentences[i - n_passages] for i in rows]
                vectors = (encode or embedder.encode_many)(texts)
                split = min(len(texts), max(0, n_passages - at))  # the batch's passages come first
                if split:
                    files[0].write(at, vectors[:split])
                if split < len(texts):
                    files[1].write(at + split - n_passages, vectors[split:])
                if store is not None:
                    store.put(dict(zip(texts, vectors, strict=True)))
                bar.update(len(texts))
    finally:
        for f in files:
            f.close()
        if store is not None:
            store.close()
    return RowFile(files[0].path), RowFile(files[1].path)


def remember_vectors(
    index_dir: Path,
    embedder: Embedder,
    passages: Sequence[str] | LazyTexts,
    p_vecs: Rows,
    sentences: Sequence[str] | LazyTexts,
    s_vecs: Rows,
) -> None:
    """Put a full build's vectors in the index folder's vector cache, so a later change embeds none again."""
    cache = VectorCache(index_dir / CACHE_FILE, embedder.weights_sha256, embedder.dim)
    try:  # in batches: never a second copy of every vector (5 GB at 10^6 passages and their sentences)
        for texts, vectors in ((passages, p_vecs), (sentences, s_vecs)):
            for at in range(0, len(texts), VECTOR_BATCH):
                stop = min(len(texts), at + VECTOR_BATCH)
                cache.put(dict(zip((texts[i] for i in range(at, stop)), vectors[at:stop], strict=True)))
    finally:
        cache.close()


# A build's passage and sentence vectors, given a scratch folder for them (removed once the build is written):
# arrays, or row files there (``embed_build``) that the index writer reads a batch at a time.
Embed = Callable[[Path], tuple[Rows, Rows]]
SCRATCH = ".scratch"  # builds/<id>.scratch, beside builds/<id>.partial
T = TypeVar("T")


def _on_thread(call: Callable[[], T], name: str) -> Future[T]:
    """``call()`` on a daemon thread of its own: a caller that fails or is interrupted (Ctrl-C) is not held
    up by it; ``result()`` gives its value or raises its error."""
    future: Future[T] = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the caller, whatever it is
                future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def write_build(
    work: Path,
    settings: Settings,
    embedder: Embedder,
    corpus: Corpus,
    passages: Sequence[Passage],
    embed: Embed,
    sources: Iterable[tuple[str, str]],
    started: float,
    extra: dict[str, object] | None = None,
    *,
    clock: Stopwatch | None = None,
) -> None:
    """Write every file of a build into ``work``, manifest last, synced.

    ``embed`` gives the passage and sentence vectors; it and then the index files (``write_indexes``) run
    on a thread of their own while the build steps (facts, lexicon), which need the passages but no
    vectors, run on this one: the model's forward passes and FAISS release the GIL, so the two overlap.
    ``extra`` is read once the vectors are in (``embed`` may add to it).
    ``sources`` gives each document's corpus file and the sha256 of its bytes, in corpus order
    (``sources.json``, written as they come), so a later change can tell an unchanged file from an edited one. ``clock`` gets a lap per stage.
    """
    clock = clock or Stopwatch()
    seconds: dict[str, float] = {}
    kind = choose_kind(len(passages), settings.index_type, settings.dense_exact_max, settings.dense_ivf_min)

    scratch = work.with_name(work.name.removesuffix(".partial") + SCRATCH)
    scratch.mkdir()

    def vectors_and_indexes() -> tuple[dict[str, Any], int]:
        t0 = time.perf_counter()
        p_vecs, s_vecs = embed(scratch)
        t1 = time.perf_counter()
        try:
            written = write_indexes(work, settings, kind, corpus, passages, p_vecs, s_vecs)
        finally:
            for rows in (p_vecs, s_vecs):
                if isinstance(rows, RowFile):
                    rows.close()
        seconds["embed (beside the steps)"] = round(t1 - t0, 3)
        seconds["indexes"] = round(time.perf_counter() - t1, 3)
        return written

    # with vectors from a cache (bench/full_scale.py) the index files are written while the facts are found;
    # a large build finds them in a child process (forked before the thread starts), a small one on this thread
    steps = _steps_in_child(work, corpus, passages) if len(passages) >= STEPS_PROCESS_MIN else None
    try:
        indexes = _on_thread(vectors_and_indexes, "build-embed")
        try:
            if steps is None:
                for step in BUILD_STEPS:
                    step(work, corpus, passages)
                    clock.lap(step.__name__.removesuffix("_build_step"))
            else:
                for stage, took in steps.wait().items():
                    clock.seconds[stage] = took
                clock.lap("waiting for the steps")
        except Exception:
            indexes.exception()  # a step failed: let the thread finish (a process exiting under it aborts)
            raise
        dense, n_sentences = indexes.result()
        clock.lap("waiting for the indexes")
    finally:
        if steps is not None:
            steps.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    clock.seconds.update(seconds)  # overlap the steps and the wait
    write_sources(work / SOURCES, sources)

    files, sizes = file_digests(work)
    IndexManifest(
        model=settings.model,
        model_weights_sha256=embedder.weights_sha256,
        dim=embedder.dim,
        chunking=settings.chunking,
        corpus_dir=str(Path(corpus.root).resolve()),
        corpus_hash=corpus.hash,
        documents=len(corpus.documents),
        passages=len(passages),
        sentences=n_sentences,
        index_type=kind,
        dense=dense,
        library_versions=_versions(),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 3),
        files=files,
        sizes=sizes,
        extra={
            "skipped": corpus.skipped,
            "tokenizer": tokenizer_signature(),
            **(extra or {}),
            "stage_seconds": clock.seconds,  # up to the manifest (writing and syncing it is not counted)
        },
    ).write(work)
    _fsync_tree(work)
    clock.lap("manifest and sync")


def write_sources(path: Path, sources: Iterable[tuple[str, str]]) -> None:
    """``sources.json``: one JSON object of corpus file -> sha256, written an entry at a time (as
    ``json.dumps`` writes a dict: the same bytes for the same entries in the same order)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("{")
        for n, (file, sha) in enumerate(sources):
            fh.write(f"{', ' if n else ''}{json.dumps(file)}: {json.dumps(sha)}")
        fh.write("}")


# Passages from which the build steps run in a process of their own. They are pure Python (the facts step
# scans every sentence): on a thread they hold the GIL against the index writer's many short calls into
# numpy, bm25s and SQLite, which then wait out the interpreter's switch interval each time (at 10^6
# passages the indexes took 882 s beside the facts on a thread, 425 s beside them in a child). A fork shares the passages and documents
# without copying them; below this size the steps take seconds and stay on the calling thread.
STEPS_PROCESS_MIN = 20_000


class _StepsChild:
    """The build steps (BUILD_STEPS) running in a forked child that writes their files into the build folder
    and reports each step's seconds, or its error, through a pipe."""

    def __init__(self, work: Path, corpus: Corpus, passages: Sequence[Passage]) -> None:
        context = multiprocessing.get_context("fork")
        self._reader, writer = context.Pipe(duplex=False)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")  # as unset; no fork warning from tokenizers
        gc.freeze()  # the child's collector leaves the parent's objects (and their pages) alone
        try:
            self._process = context.Process(
                target=_run_steps, args=(writer, work, corpus, passages), name="qa-build-steps", daemon=True
            )
            self._process.start()
        finally:
            gc.unfreeze()
        writer.close()

    def wait(self) -> dict[str, float]:
        """Each step's seconds, once all are done; a step's error raised here as it was raised there."""
        try:
            kind, value = self._reader.recv()
        except EOFError:
            self._process.join()
            raise BuildFailed(
                f"the build steps' process ended without finishing (exit code {self._process.exitcode}; "
                "out of memory?)"
            ) from None
        self._process.join()
        if kind == "error":
            raise value
        return dict(value)

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
        self._reader.close()


def _run_steps(writer: Connection, work: Path, corpus: Corpus, passages: Sequence[Passage]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    clock = Stopwatch()
    try:
        for step in BUILD_STEPS:
            step(work, corpus, passages)
            clock.lap(step.__name__.removesuffix("_build_step"))
    except BaseException as exc:  # everything reaches the parent, which raises it
        try:
            writer.send(("error", exc))
        except Exception:  # an exception that does not pickle: its text
            writer.send(("error", BuildFailed(f"a build step failed: {type(exc).__name__}: {exc}")))
    else:
        writer.send(("done", clock.seconds))
    finally:
        writer.close()


def _steps_in_child(work: Path, corpus: Corpus, passages: Sequence[Passage]) -> _StepsChild | None:
    """The steps started in a child process, or None where one cannot be forked safely (not Linux) or at all
    (a daemonic process, such as a multiprocessing worker, may have no children)."""
    if sys.platform != "linux" or multiprocessing.current_process().daemon:
        return None
    return _StepsChild(work, corpus, passages)


def write_indexes(
    work: Path,
    settings: Settings,
    kind: Kind,
    corpus: Corpus,
    passages: Sequence[Passage],
    p_vecs: Rows,
    s_vecs: Rows,
) -> tuple[dict[str, Any], int]:
    """The dense index, BM25 over passages and over sentences, the sentence vectors, the store and the
    figure, table and section references; the dense index's manifest record and the sentence count."""
    sentences = sentence_table(passages)
    dense = DenseIndex.build(p_vecs, kind, **settings.dense_build_options, scratch=work).save(
        work / "dense.faiss"
    )
    KeywordIndex.write((p.keyword_text for p in passages), work / "bm25")  # a batch at a time, not whole
    KeywordIndex.write(sentences.texts(corpus), work / MENTIONS)
    write_sentence_vectors(work, s_vecs, sentences)
    write_store(work / STORE_FILE, passages, sentences, corpus.documents)
    StoredReferences.write(passages, work / REFERENCES_DB)  # not a pass over them at every load
    return dense, len(sentences)


def write_sentence_vectors(work: Path, s_vecs: Rows, sentences: SentenceTable) -> None:
    """Sentence vectors as float16 (half the bytes; the store maps them) and each passage's sentence rows
    as one -1 padded int32 table, so the retriever's best-sentence score needs no per-passage lookup."""
    with RowWriter(work / SENTENCE_VECTORS, (len(s_vecs), s_vecs.shape[1]), np.float16) as stored:
        for at in range(0, len(s_vecs), VECTOR_BATCH):  # converted a batch at a time, not in one float16 copy
            stored.write(at, s_vecs[at : at + VECTOR_BATCH])
    sentences.save_passage_table(work / PASSAGE_SENTENCES)


def file_digests(work: Path) -> tuple[dict[str, str], dict[str, int]]:
    """sha256 and size of every file of a build (the manifest's ``files`` and ``sizes``)."""
    paths = [p for p in sorted(work.rglob("*")) if p.is_file()]
    return (
        {p.relative_to(work).as_posix(): file_sha256(p) for p in paths},
        {p.relative_to(work).as_posix(): p.stat().st_size for p in paths},
    )


def finish_build(work: Path) -> Path:
    """Rename a complete ``<id>.partial`` folder to ``<id>`` (not yet current)."""
    final = work.with_name(work.name.removesuffix(".partial"))
    os.rename(work, final)
    return final


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def swap_current(index_dir: Path, target: Path) -> None:
    """Point index_dir/current at ``target`` with one rename, which readers see all or nothing of."""
    tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(target, index_dir), tmp)
    os.replace(tmp, current_path(index_dir))


def prune_builds(index_dir: Path, keep: set[str]) -> None:
    """Remove old builds, keeping the newest previous one so a server still reading it is not cut off."""
    builds = index_dir / BUILDS
    done = sorted(
        (p for p in builds.iterdir() if p.is_dir() and not p.name.endswith(".partial")), reverse=True
    )
    for old in [p for p in done if p.name not in keep][1:]:
        shutil.rmtree(old, ignore_errors=True)


from qa.facts.store import facts_build_step  # noqa: E402  (registered last: facts import the corpus model)
from qa.lexicon import lexicon_build_step  # noqa: E402

BUILD_STEPS.append(facts_build_step)
BUILD_STEPS.append(lexicon_build_step)
