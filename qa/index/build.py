"""Build an index from a corpus folder and swap it in atomically: a killed build leaves the old one serving."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qa.jsonl import write_jsonl
from qa.chunking import Passage, chunk_document
from qa.corpus import Corpus, load_corpus
from qa.documents import document_to_dict
from qa.encoding import Embedder
from qa.index.dense import DenseIndex, choose_kind
from qa.index.keyword import KeywordIndex
from qa.index.manifest import IndexManifest, file_sha256, tokenizer_signature
from qa.settings import Settings

log = logging.getLogger(__name__)

CURRENT = "current"
BUILDS = "builds"
SOURCES = "sources.json"  # corpus file -> sha256 of its bytes
# Index-time steps that add files to a build folder (the facts extractor registers one).
BuildStep = Callable[[Path, Corpus, list[Passage]], None]
BUILD_STEPS: list[BuildStep] = []


def current_path(index_dir: Path) -> Path:
    return index_dir / CURRENT


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


def sentence_table(passages: list[Passage]) -> tuple[list[dict[str, object]], dict[str, list[int]]]:
    """Unique sentences across passages (overlap repeats them) and each passage's sentence rows."""
    rows: list[dict[str, object]] = []
    seen: dict[tuple[str, int, int], int] = {}
    by_passage: dict[str, list[int]] = {}
    for p in passages:
        ids = []
        for s, e in p.sentences:
            key = (p.doc_id, s, e)
            if key not in seen:
                seen[key] = len(rows)
                rows.append({"doc_id": p.doc_id, "start": s, "end": e, "passage_id": p.id, "kind": p.kind})
            ids.append(seen[key])
        by_passage[p.id] = ids
    return rows, by_passage


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
    corpus_dir = Path(corpus.root if corpus else (corpus_dir or settings.corpus_dir))
    index_dir = Path(settings.index_dir)
    corpus = corpus or load_corpus(corpus_dir, max_file_mb=settings.max_file_mb)
    for message in corpus.skipped:
        log.warning("skipped: %s", message)
    with build_lock(index_dir):
        work = new_build_folder(index_dir)
        passages = chunk_corpus(settings, embedder, corpus, progress=progress)
        sentences, _ = sentence_table(passages)
        texts = sentence_texts(corpus, sentences)
        if progress:
            print(f"embedding {len(passages)} passages and {len(sentences)} sentences", flush=True)
        p_vecs = embedder.encode([p.embed_text for p in passages], progress=progress)
        s_vecs = embedder.encode(texts, progress=progress)
        sources = {d.meta.file: file_sha256(corpus.root / d.meta.file) for d in corpus.documents}
        write_build(work, settings, embedder, corpus, passages, (p_vecs, s_vecs), sources, started)
        final = finish_build(work)
        swap_current(index_dir, final)
        prune_builds(index_dir, keep={final.name})
        return final


def new_build_folder(index_dir: Path) -> Path:
    """A fresh ``builds/<id>.partial`` folder (stale partial folders of killed builds are removed first)."""
    builds = index_dir / BUILDS
    builds.mkdir(parents=True, exist_ok=True)
    for stale in builds.glob("*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    work = builds / f"{build_id}.partial"
    work.mkdir()
    return work


def chunk_corpus(settings: Settings, embedder: Embedder, corpus: Corpus, *, progress: bool = False) -> list[Passage]:
    passages: list[Passage] = []
    for doc in tqdm(corpus.documents, desc="chunking", unit="doc", disable=not progress):
        passages.extend(
            chunk_document(
                doc,
                embedder.count_tokens,
                max_tokens=settings.chunk_max_tokens,
                overlap=settings.chunk_overlap_sentences,
            )
        )
    return passages


def sentence_texts(corpus: Corpus, sentences: list[dict[str, object]]) -> list[str]:
    texts = {d.id: d.text for d in corpus.documents}
    return [texts[str(s["doc_id"])][int(s["start"]) : int(s["end"])] for s in sentences]  # type: ignore[call-overload]


def write_build(
    work: Path,
    settings: Settings,
    embedder: Embedder,
    corpus: Corpus,
    passages: list[Passage],
    vectors: tuple[np.ndarray, np.ndarray],
    sources: dict[str, str],
    started: float,
    extra: dict[str, object] | None = None,
) -> None:
    """Write every file of a build into ``work`` (passage and sentence vectors given), manifest last, synced.

    ``sources`` maps each document's corpus file to the sha256 of its bytes (``sources.json``), so a later
    change can tell an unchanged file from a new or edited one.
    """
    p_vecs, s_vecs = vectors
    sentences, _ = sentence_table(passages)
    kind = choose_kind(len(passages), settings.index_type, settings.ann_threshold)
    DenseIndex.build(p_vecs, kind).save(work / "dense.faiss")
    KeywordIndex.build([p.keyword_text for p in passages]).save(work / "bm25")
    np.save(work / "sentences.npy", s_vecs)
    write_jsonl(work / "passages.jsonl", [p.to_dict() for p in passages])
    write_jsonl(work / "sentences.jsonl", sentences)
    (work / "documents.json").write_text(
        json.dumps([document_to_dict(d) for d in corpus.documents]), encoding="utf-8"
    )
    (work / SOURCES).write_text(json.dumps(sources, sort_keys=True), encoding="utf-8")
    for step in BUILD_STEPS:
        step(work, corpus, passages)

    files = {p.relative_to(work).as_posix(): file_sha256(p) for p in sorted(work.rglob("*")) if p.is_file()}
    IndexManifest(
        model=settings.model,
        model_weights_sha256=embedder.weights_sha256,
        dim=embedder.dim,
        chunking=settings.chunking,
        corpus_dir=str(Path(corpus.root).resolve()),
        corpus_hash=corpus.hash,
        documents=len(corpus.documents),
        passages=len(passages),
        sentences=len(sentences),
        index_type=kind,
        library_versions=_versions(),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 3),
        files=files,
        extra={"skipped": corpus.skipped, "tokenizer": tokenizer_signature(), **(extra or {})},
    ).write(work)
    _fsync_tree(work)


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
