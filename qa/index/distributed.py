"""A full build on Ray (`qa index --ray auto|ADDRESS`): reading, structure, chunking and embedding run as one
Ray Data pipeline (the embedding in a pool of actors, one model each, CPU or GPU); the driver takes the
results in corpus order as they come, as a single-process build reads documents: each onto the build's shelf
of scratch files, its passages into the passage table, its vectors into shard files, so what the driver holds
is a batch, not the corpus. It then assembles the same build as ``build_index`` (manifest, atomic swap).

Ray is imported here only, and only when a build asks for it: without ``--ray`` nothing imports it.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import TokenCounter, chunk_document
from qa.corpus import (
    MANIFEST,
    Corpus,
    FileShas,
    HashEntries,
    assemble_corpus,
    file_sha256,
    read_corpus_file,
    read_manifest,
)
from qa.encoding import Embedder, resolve_model
from qa.errors import CorpusError, QAError
from qa.index.build import (
    Stopwatch,
    assemble_build,
    build_lock,
    new_build_folder,
    passage_texts,
    remember_vectors,
    sentence_table,
)
from qa.index.tables import RowFile, RowWriter
from qa.listing import CorpusFiles, corpus_files
from qa.passage_table import PassageTable
from qa.readers import supported_suffixes
from qa.settings import Settings
from qa.shelf import DocumentShelf

log = logging.getLogger(__name__)

DOCS_PER_BATCH = 8  # documents per embedding batch: an actor embeds their passages and sentences together
FILES_PER_BLOCK = (
    256  # corpus files per input block (one reading task each): a few per actor for small corpora
)
DOCS_PER_SHARD = 256  # documents whose vectors the driver writes to one shard file


@lru_cache(maxsize=2)
def _counter(model: str) -> TokenCounter:
    """The model's word-piece counter, without its weights (one per Ray worker process)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]]

    return count


def _manifest(base: Path) -> dict[str, dict[str, Any]]:
    """``base``'s manifest entries, read once per worker process while the file is unchanged."""
    try:
        stat = (base / MANIFEST).stat()
        stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    return _manifest_at(str(base), stamp)


@lru_cache(maxsize=2)
def _manifest_at(root: str, stamp: tuple[int, int] | None) -> dict[str, dict[str, Any]]:
    return read_manifest(Path(root))


def read_and_chunk(row: dict[str, Any], *, root: str, model: str, settings_json: str) -> dict[str, Any]:
    """Ray Data map: one corpus file (its path below ``root``) -> its document, passages and file sha256
    (pickled, for the driver), and the texts to embed (pickled, for an embedding actor)."""
    settings = Settings.model_validate_json(settings_json)
    base = Path(root)
    path = base / row["path"]
    doc, message = read_corpus_file(path, base, _manifest(base), max_file_mb=settings.max_file_mb)
    sha = ""
    if doc is not None:
        try:  # (the file was just read: its bytes are in the kernel's cache)
            sha = file_sha256(path)
        except OSError as exc:
            doc, message = None, f"{path}: cannot read ({exc.strerror})"
    texts: list[str] = []
    n_passages = 0
    passages = []
    if doc is not None:
        passages = chunk_document(
            doc,
            _counter(model),
            max_tokens=settings.chunk_max_tokens,
            overlap=settings.chunk_overlap_sentences,
        )
        table = sentence_table(passages)
        texts = [p.embed_text for p in passages]
        texts.extend(doc.text[a:b] for a, b in zip(table.starts, table.ends, strict=True))
        n_passages = len(passages)
    return {
        "index": row["index"],
        "payload": pickle.dumps((doc, message, passages, sha)),
        "texts": pickle.dumps(texts),
        "counts": [n_passages, len(texts) - n_passages],
    }


class EmbedActor:
    """Ray Data actor: one model, embedding a batch of documents' passages and sentences in one go."""

    def __init__(self, model: str, threads: int, device: str, precision: str = "float32") -> None:
        self.embedder = Embedder(model, threads=threads, device=device, precision=precision)
        self.threads = threads

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts: list[str] = []
        sizes = []
        for item in batch["texts"]:
            doc_texts = pickle.loads(item)
            texts.extend(doc_texts)
            sizes.append(len(doc_texts))
        vectors = self.embedder.encode_many(texts, workers=1)
        out, at = [], 0
        for n in sizes:
            out.append(vectors[at : at + n].tobytes())
            at += n
        return {
            "index": np.asarray(batch["index"]),
            "payload": batch["payload"],
            "counts": np.asarray([list(c) for c in batch["counts"]], dtype=np.int64).reshape(-1, 2),
            "vectors": np.asarray(out, dtype=object),
        }


def connect(address: str) -> None:
    """``auto``: the cluster at RAY_ADDRESS when set, else a new local one; anything else: that cluster."""
    import ray

    import qa

    target = os.environ.get("RAY_ADDRESS") if address == "auto" else address
    runtime_env = {
        "py_modules": [str(Path(qa.__file__).parent)],  # this qa, shipped to every node
        "env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    }
    try:
        ray.init(address=target or None, runtime_env=runtime_env, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise QAError(f"cannot connect to Ray at {target or 'a new local cluster'}: {exc}") from exc


def build_index_ray(
    settings: Settings,
    embedder: Embedder,
    *,
    address: str = "auto",
    actors: int = 1,
    gpus: float = 0.0,
    progress: bool = False,
) -> Path:
    """Read, chunk and embed ``settings.corpus_dir`` on Ray; the same build as ``build_index``, now current."""
    import ray

    started = time.perf_counter()
    root = Path(settings.corpus_dir)
    files = corpus_files(root)
    if not files:  # (before a cluster is started or joined)
        raise CorpusError(f"{root}: no readable documents (no {'/'.join(supported_suffixes())} files)")
    index_dir = Path(settings.index_dir)
    connect(address)
    try:
        with build_lock(index_dir):
            clock = Stopwatch()
            work = new_build_folder(index_dir)
            shards = work.with_name(work.name.removesuffix(".partial") + ".shards")
            shards.mkdir()
            shelf = DocumentShelf(index_dir)  # the documents on disk beside the index, as a single build's
            results = InOrder(root, len(files), shelf, shards)
            results.skipped += files.skipped
            try:
                stats = _run_pipeline(settings, files, results, actors=actors, gpus=gpus, progress=progress)
                corpus = results.corpus()
                clock.lap("ray pipeline")
                for message in corpus.skipped:
                    log.warning("skipped: %s", message)
                passages = results.passages
                p_texts = passage_texts(passages)
                s_texts = sentence_table(passages).texts(corpus)
                totals = results.totals

                def embed(scratch: Path) -> tuple[RowFile, RowFile]:
                    p_vecs, s_vecs = _shard_vectors(shards, totals, embedder.dim, scratch)
                    remember_vectors(index_dir, embedder, p_texts, p_vecs, s_texts, s_vecs)
                    return p_vecs, s_vecs

                if progress:
                    print(f"ray: {stats}", flush=True)
                return assemble_build(
                    settings, embedder, work, corpus, passages, embed, started, clock, extra={"ray": stats}
                )
            finally:
                results.close()
                shelf.close()
                shutil.rmtree(shards, ignore_errors=True)
    finally:
        ray.shutdown()


def _run_pipeline(
    settings: Settings,
    files: CorpusFiles,
    results: InOrder,
    *,
    actors: int,
    gpus: float,
    progress: bool,
) -> dict[str, object]:
    """Stream the corpus through Ray, each result batch into ``results`` as it comes back."""
    import ray

    t0 = time.perf_counter()
    context = ray.data.DataContext.get_current()
    ray_log = logging.getLogger("ray.data")
    was = (context.execution_options.preserve_order, context.enable_progress_bars, ray_log.level)
    context.execution_options.preserve_order = True  # results in corpus order: the driver waits for none
    if not progress:  # Ray Data's progress lines every few seconds
        ray_log.setLevel(logging.WARNING)
        context.enable_progress_bars = False
    try:
        texts = _stream(settings, files, results, ray, actors=actors, gpus=gpus)
    finally:  # (the driver's process may run other Ray Data work after the build)
        context.execution_options.preserve_order, context.enable_progress_bars = was[0], was[1]
        ray_log.setLevel(was[2])
    seconds = time.perf_counter() - t0
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    return {
        "nodes": len(nodes),
        "actors": actors,
        "gpus_per_actor": gpus,
        "documents": len(files),
        "texts_embedded": texts,
        "pipeline_seconds": round(seconds, 3),
    }


def _stream(
    settings: Settings, files: CorpusFiles, results: InOrder, ray: Any, *, actors: int, gpus: float
) -> int:
    """The pipeline over ``files`` (reading and chunking as tasks, embedding in ``actors``), each result
    ``put`` into ``results`` as it comes; the number of texts embedded."""
    import pyarrow as pa

    n, names = len(files), files.names
    per_block = max(1, min(FILES_PER_BLOCK, -(-n // (4 * actors))))
    blocks = []  # each put into Ray's object store as it is made: the driver holds one block's paths
    for at in range(0, n, per_block):
        stop = min(n, at + per_block)
        block = {
            "index": pa.array(range(at, stop), pa.int64()),
            "path": pa.array(names[at:stop], pa.string()),
        }
        blocks.append(ray.put(pa.table(block)))
    ds: Any = ray.data.from_arrow_refs(blocks)
    ds = ds.map(
        read_and_chunk,
        fn_kwargs={
            "root": str(files.root),
            "model": settings.model,
            "settings_json": settings.model_dump_json(),
        },
        num_cpus=0.25,
    )
    threads = 1 if gpus else max(1, settings.torch_threads)
    ds = ds.map_batches(
        EmbedActor,
        fn_constructor_kwargs={
            "model": settings.model,
            "threads": threads,
            "device": "cuda" if gpus else "cpu",
            "precision": settings.embed_precision,
        },
        batch_size=DOCS_PER_BATCH,
        concurrency=actors,
        num_cpus=threads,
        num_gpus=gpus or None,
    )
    texts = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        counts = np.asarray(batch["counts"]).reshape(-1, 2)
        for i, payload, (n_p, n_s), vectors in zip(
            batch["index"], batch["payload"], counts, batch["vectors"], strict=True
        ):
            results.put(int(i), payload, int(n_p), int(n_s), vectors)
        texts += int(counts.sum())
    return texts


class InOrder:
    """The pipeline's results, ``put`` in any order, taken in corpus order (by file index): each document onto
    the ``shelf``, its passages into ``passages``, its corpus-hash entry and file sha256 into scratch files,
    its vectors into shard files in ``shards`` (``DOCS_PER_SHARD`` documents' each); a skipped file's message
    kept. Held in memory meanwhile: the results ahead of the next in order (none: the pipeline keeps order)
    and the vectors of the shard being filled."""

    def __init__(self, root: Path, files: int, shelf: DocumentShelf, shards: Path) -> None:
        self.root, self.files, self.shelf, self.shards = root, files, shelf, shards
        self.passages = PassageTable(shelf)
        self.skipped: list[str] = []
        self.totals = (0, 0)  # passage and sentence vectors taken
        self._entries = HashEntries(folder=shelf.folder)
        self._sources = FileShas(folder=shelf.folder)
        self._ahead: dict[int, tuple[bytes, int, int, bytes]] = {}
        self._next = 0
        self._counts: list[tuple[int, int]] = []  # the shard being filled: its documents' vector counts
        self._vectors: list[bytes] = []
        self._shard = 0

    def put(self, index: int, payload: bytes, n_passages: int, n_sentences: int, vectors: bytes) -> None:
        if not self._next <= index < self.files or index in self._ahead:
            raise QAError(f"ray: a result for corpus file {index} out of place")
        self._ahead[index] = (payload, n_passages, n_sentences, vectors)
        while self._next in self._ahead:
            self._take(*self._ahead.pop(self._next))
            self._next += 1
        if len(self._counts) >= DOCS_PER_SHARD:
            self._write_shard()

    def _take(self, payload: bytes, n_p: int, n_s: int, vectors: bytes) -> None:
        doc, message, passages, sha = pickle.loads(payload)
        if doc is None:
            self.skipped.append(message)
        else:
            self.shelf.append(doc)
            self.passages.add(doc, passages)
            self._entries.add(doc.id, doc.meta.to_dict(), doc.sha256)
            self._sources.add(doc.meta.file, sha)
        if n_p != len(passages):
            raise QAError(
                f"ray: {n_p} passage vectors came back for the {len(passages)} passages of file {self._next}"
            )
        self._counts.append((n_p, n_s))
        self._vectors.append(vectors)
        self.totals = (self.totals[0] + n_p, self.totals[1] + n_s)

    def _write_shard(self) -> None:
        if not self._counts:
            return
        np.savez(
            self.shards / f"shard-{self._shard:06d}.npz",
            counts=np.asarray(self._counts, dtype=np.int64).reshape(-1, 2),
            vectors=np.frombuffer(b"".join(self._vectors), dtype=np.float32),
        )
        self._counts, self._vectors = [], []
        self._shard += 1

    def corpus(self) -> Corpus:
        """The corpus of the documents taken (all of the files': else an error), checked as a whole."""
        self._write_shard()
        if self._next != self.files:
            missing = self.files - self._next - len(self._ahead)
            raise QAError(f"ray: {missing} of {self.files} corpus files came back without a result")
        corpus = assemble_corpus(self.root, read_manifest(self.root), self.shelf, self.skipped, self._entries)
        corpus.sources = self._sources
        return corpus

    def close(self) -> None:
        """Let go of the scratch files (the shelf and the shards are the caller's)."""
        self._entries.close()
        self._sources.close()


def _shard_vectors(shards: Path, totals: tuple[int, int], dim: int, scratch: Path) -> tuple[RowFile, RowFile]:
    """The shards' passage and sentence vectors (in corpus order) as row files, one shard read at a time."""
    p_at = s_at = 0
    with (
        RowWriter(scratch / "passages.f32.npy", (totals[0], dim)) as p_out,
        RowWriter(scratch / "sentences.f32.npy", (totals[1], dim)) as s_out,
    ):
        for shard in sorted(shards.glob("shard-*.npz")):
            with np.load(shard) as data:
                vectors = data["vectors"].reshape(-1, dim)
                at = 0
                for n_p, n_s in data["counts"]:
                    p_out.write(p_at, vectors[at : at + n_p])
                    s_out.write(s_at, vectors[at + n_p : at + n_p + n_s])
                    at, p_at, s_at = at + n_p + n_s, p_at + n_p, s_at + n_s
    if (p_at, s_at) != totals:
        raise QAError(f"ray: the shards hold {p_at} passage and {s_at} sentence vectors, not {totals}")
    return RowFile(p_out.path), RowFile(s_out.path)
