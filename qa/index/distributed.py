"""A full build on Ray (`qa index --ray auto|ADDRESS`): reading, structure, chunking and embedding run as one
Ray Data pipeline (the embedding in a pool of actors, one model each, CPU or GPU); the vectors come back as
shards on the driver, which assembles the same build as ``build_index`` (manifest, atomic swap).

Ray is imported here only, and only when a build asks for it: without ``--ray`` nothing imports it.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import Passage, TokenCounter, chunk_document
from qa.corpus import Corpus, assemble_corpus, corpus_files, read_corpus_file, read_manifest
from qa.documents import Document
from qa.encoding import Embedder, resolve_model
from qa.readers import supported_suffixes
from qa.errors import CorpusError, QAError
from qa.index.tables import RowFile, RowWriter
from qa.passage_table import PassageTable
from qa.index.build import (
    Stopwatch,
    assemble_build,
    build_lock,
    new_build_folder,
    passage_texts,
    remember_vectors,
    sentence_table,
)
from qa.settings import Settings

log = logging.getLogger(__name__)

DOCS_PER_BATCH = 8  # documents per embedding batch: an actor embeds their passages and sentences together


@lru_cache(maxsize=2)
def _counter(model: str) -> TokenCounter:
    """The model's word-piece counter, without its weights (one per Ray worker process)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]]

    return count


def read_and_chunk(row: dict[str, Any], *, root: str, model: str, settings_json: str) -> dict[str, Any]:
    """Ray Data map: one corpus file -> its document, passages and the texts to embed (pickled)."""
    settings = Settings.model_validate_json(settings_json)
    base = Path(root)
    doc, message = read_corpus_file(
        Path(row["path"]), base, read_manifest(base), max_file_mb=settings.max_file_mb
    )
    passages: list[Passage] = []
    sentences: list[str] = []
    if doc is not None:
        passages = chunk_document(
            doc,
            _counter(model),
            max_tokens=settings.chunk_max_tokens,
            overlap=settings.chunk_overlap_sentences,
        )
        table = sentence_table(passages)
        sentences = [doc.text[a:b] for a, b in zip(table.starts, table.ends, strict=True)]
    return {"index": row["index"], "payload": pickle.dumps((doc, message, passages, sentences))}


class EmbedActor:
    """Ray Data actor: one model, embedding a batch of documents' passages and sentences in one go."""

    def __init__(self, model: str, threads: int, device: str, precision: str = "float32") -> None:
        self.embedder = Embedder(model, threads=threads, device=device, precision=precision)
        self.threads = threads

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts: list[str] = []
        counts = []
        for payload in batch["payload"]:
            _, _, passages, sentences = pickle.loads(payload)
            texts.extend(p.embed_text for p in passages)
            texts.extend(sentences)
            counts.append((len(passages), len(sentences)))
        vectors = self.embedder.encode_many(texts, workers=1)
        out, at = [], 0
        for n_p, n_s in counts:
            out.append(vectors[at : at + n_p + n_s].tobytes())
            at += n_p + n_s
        return {
            "index": np.asarray(batch["index"]),
            "payload": batch["payload"],
            "counts": np.asarray(counts, dtype=np.int64).reshape(-1, 2),
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
            try:
                docs, stats = _run_pipeline(
                    settings, root, files, shards, actors=actors, gpus=gpus, progress=progress
                )
                clock.lap("ray pipeline")
                corpus, passages, rows, totals = _assemble(root, files, docs, shards)
                del docs  # the passages are columns now (PassageTable); the objects Ray gave can go
                clock.lap("assemble shards")
                for message in corpus.skipped:
                    log.warning("skipped: %s", message)
                p_texts = passage_texts(passages)
                s_texts = sentence_table(passages).texts(corpus)

                def embed(scratch: Path) -> tuple[RowFile, RowFile]:
                    p_vecs, s_vecs = _shard_vectors(shards, rows, totals, embedder.dim, scratch)
                    remember_vectors(index_dir, embedder, p_texts, p_vecs, s_texts, s_vecs)
                    return p_vecs, s_vecs

                if progress:
                    print(f"ray: {stats}", flush=True)
                return assemble_build(
                    settings, embedder, work, corpus, passages, embed, started, clock, extra={"ray": stats}
                )
            finally:
                shutil.rmtree(shards, ignore_errors=True)
    finally:
        ray.shutdown()


def _run_pipeline(
    settings: Settings,
    root: Path,
    files: Sequence[Path],
    shards: Path,
    *,
    actors: int,
    gpus: float,
    progress: bool,
) -> tuple[dict[int, tuple[Document | None, str, list[Passage]]], dict[str, object]]:
    """Stream the corpus through Ray; each result batch's vectors go to a shard file in ``shards``."""
    import ray

    t0 = time.perf_counter()
    if not progress:  # Ray Data's progress lines every few seconds
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ray.data.DataContext.get_current().enable_progress_bars = False
    items = [{"index": i, "path": str(p)} for i, p in enumerate(files)]
    ds: Any = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4 * actors)))
    ds = ds.map(
        read_and_chunk,
        fn_kwargs={"root": str(root), "model": settings.model, "settings_json": settings.model_dump_json()},
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
    docs: dict[int, tuple[Document | None, str, list[Passage]]] = {}
    texts = 0
    for n, batch in enumerate(ds.iter_batches(batch_size=None, batch_format="numpy")):
        indices = [int(i) for i in batch["index"]]
        counts = np.asarray(batch["counts"]).reshape(-1, 2)
        for i, payload in zip(indices, batch["payload"], strict=True):
            doc, message, passages, _ = pickle.loads(payload)
            docs[i] = (doc, message, passages)
        np.savez(
            shards / f"shard-{n:05d}.npz",
            index=np.asarray(indices, dtype=np.int64),
            counts=counts,
            vectors=np.frombuffer(b"".join(batch["vectors"]), dtype=np.float32),
        )
        texts += int(counts.sum())
    seconds = time.perf_counter() - t0
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    stats: dict[str, object] = {
        "nodes": len(nodes),
        "actors": actors,
        "gpus_per_actor": gpus,
        "documents": len(files),
        "texts_embedded": texts,
        "pipeline_seconds": round(seconds, 3),
    }
    return docs, stats


def _assemble(
    root: Path,
    files: Sequence[Path],
    docs: dict[int, tuple[Document | None, str, list[Passage]]],
    shards: Path,
) -> tuple[Corpus, PassageTable, dict[int, tuple[int, int]], tuple[int, int]]:
    """The corpus and passages in corpus order (by file, then passage), whatever order Ray gave; each
    indexed file's first passage row and first sentence row, and the passage and sentence counts (the
    shards' counts are read here, their vectors by ``_shard_vectors``)."""
    if sorted(docs) != list(range(len(files))):
        raise QAError(f"ray: {len(files) - len(docs)} of {len(files)} corpus files came back without a result")
    counts: dict[int, tuple[int, int]] = {}
    for shard in sorted(shards.glob("shard-*.npz")):
        with np.load(shard) as data:  # an .npz reads each array as asked for: not the vectors
            for i, (n_p, n_s) in zip(data["index"], data["counts"], strict=True):
                counts[int(i)] = (int(n_p), int(n_s))
    documents: list[Document] = []
    skipped: list[str] = []
    passages = PassageTable()
    rows: dict[int, tuple[int, int]] = {}
    p_at = s_at = 0
    for i in range(len(files)):
        doc, message, doc_passages = docs[i]
        if doc is None:
            skipped.append(message)
            continue
        documents.append(doc)
        passages.add(doc, doc_passages)
        rows[i] = (p_at, s_at)
        p_at, s_at = p_at + counts[i][0], s_at + counts[i][1]
    if p_at != len(passages):
        raise QAError(f"ray: the shards hold {p_at} passage vectors for {len(passages)} passages")
    return assemble_corpus(root, read_manifest(root), documents, skipped), passages, rows, (p_at, s_at)


def _shard_vectors(
    shards: Path, rows: dict[int, tuple[int, int]], totals: tuple[int, int], dim: int, scratch: Path
) -> tuple[RowFile, RowFile]:
    """The shards' passage and sentence vectors as row files in corpus order, one shard read at a time."""
    with (
        RowWriter(scratch / "passages.f32.npy", (totals[0], dim)) as p_out,
        RowWriter(scratch / "sentences.f32.npy", (totals[1], dim)) as s_out,
    ):
        for shard in sorted(shards.glob("shard-*.npz")):
            with np.load(shard) as data:
                vectors = data["vectors"].reshape(-1, dim)
                at = 0
                for i, (n_p, n_s) in zip(data["index"], data["counts"], strict=True):
                    if int(i) in rows:
                        p_row, s_row = rows[int(i)]
                        p_out.write(p_row, vectors[at : at + n_p])
                        s_out.write(s_row, vectors[at + n_p : at + n_p + n_s])
                    at += n_p + n_s
    return RowFile(p_out.path), RowFile(s_out.path)
