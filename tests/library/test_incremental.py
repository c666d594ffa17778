"""An incremental build equals a build from scratch of the same corpus, and embeds only what is new.

Facts and the vocabulary learned from the documents depend on every document: after an add or a remove,
the build's fact store must hold what a full build files for the corpus now in the folder, and its
lexicon.json be byte for byte the full build's, whatever an incremental build reuses. A full build's vectors land in the vector cache, so
even without the current build's own vectors a change embeds only the new paper.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from readers.paperset import stage_paper

from qa.chunking import Passage
from qa.corpus import file_sha256, load_corpus
from qa.encoding import Embedder
from qa.facts import FACTS_FILE, FactStore
from qa.index.build import BUILD_STEPS, SOURCES, chunk_corpus, current_path, sentence_table
from qa.index.dense import DenseIndex
from qa.index.manifest import IndexManifest
from qa.index.tables import STORE_FILE, Passages, Store
from qa.library.changes import add_documents, remove_documents
from qa.library.incremental import Previous, build_next
from qa.library.uploads import Staged
from qa.library.vectors import CACHE_FILE, VectorCache
from qa.settings import Settings

PAPER = "cii2015-killer-t-dc-lung-phase3.xml"  # the smallest real paper: a trial report with its own facts


def _stored(build: Path) -> list[Passage]:
    return list(Passages(Store(build / STORE_FILE)))


def _copy(tmp_path: Path, settings: Settings) -> Settings:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(settings.corpus_dir, corpus)
    shutil.copytree(settings.index_dir, index, symlinks=True)
    return Settings(corpus_dir=corpus, index_dir=index)


def _stage(settings: Settings, name: str = PAPER) -> list[Staged]:
    return stage_paper(settings, name)


def _full_build_steps(settings: Settings, embedder: Embedder, folder: Path) -> list[dict[str, object]]:
    """What a full build writes for the corpus folder as it is now: the build steps' files (facts, lexicon)
    into ``folder``, and the passages (returned)."""
    corpus = load_corpus(Path(settings.corpus_dir), max_file_mb=settings.max_file_mb)
    passages = chunk_corpus(settings, embedder, corpus)
    folder.mkdir()
    for step in BUILD_STEPS:
        step(folder, corpus, passages)
    return [json.loads(json.dumps(p.to_dict())) for p in passages]  # as the store holds them


def _assert_same_as_a_full_build(settings: Settings, embedder: Embedder, folder: Path) -> None:
    build = current_path(Path(settings.index_dir))
    passages = _full_build_steps(settings, embedder, folder)
    assert [json.loads(json.dumps(p.to_dict())) for p in _stored(build)] == passages
    written = sorted(p.name for p in folder.iterdir())
    assert written == [FACTS_FILE, "lexicon.json"]
    assert (build / "lexicon.json").read_bytes() == (folder / "lexicon.json").read_bytes()
    assert _facts(build) == _facts(folder), "the fact store differs from a full build's"
    # each document's file and its bytes' hash, in the order a full build reads (and writes) them
    listed = [(rel, file_sha256(Path(settings.corpus_dir) / rel)) for rel in _files(settings)]
    assert list(json.loads((build / SOURCES).read_text()).items()) == listed


def _files(settings: Settings) -> list[str]:
    corpus = load_corpus(Path(settings.corpus_dir))
    assert corpus.sources is not None
    return [rel for rel, _ in corpus.sources]


def _facts(build: Path) -> dict[str, Any]:
    return FactStore(build / FACTS_FILE).to_dict()


def test_facts_and_vocabulary_after_an_add_and_a_remove_equal_a_full_build(
    tmp_path: Path, settings: Settings, built_index: Path, embedder: Embedder
) -> None:
    copy = _copy(tmp_path, settings)
    before = _facts(current_path(Path(copy.index_dir)))
    added = add_documents(copy, embedder, _stage(copy))
    assert added.build is not None and added.added == [Path(PAPER).stem]
    _assert_same_as_a_full_build(copy, embedder, tmp_path / "full-after-add")
    after = _facts(current_path(Path(copy.index_dir)))
    assert any(e["doc_id"] == Path(PAPER).stem for t in after["trials"] for e in t["evidence"])
    assert len(after["trials"]) > len(before["trials"])  # the paper brought its own trial

    seed = next(d for d in Previous.load(Path(copy.index_dir), embedder).documents.values())
    removed = remove_documents(copy, embedder, [seed.id])
    assert removed.build is not None and removed.build.passages_embedded == 0
    _assert_same_as_a_full_build(copy, embedder, tmp_path / "full-after-remove")
    facts = _facts(current_path(Path(copy.index_dir)))
    assert all(e["doc_id"] != seed.id for t in facts["trials"] for e in t["evidence"])
    assert all(f["doc_id"] != seed.id for f in facts["learned"])


def test_a_full_build_fills_the_vector_cache(
    settings: Settings, built_index: Path, embedder: Embedder
) -> None:
    build = current_path(Path(settings.index_dir))
    manifest = IndexManifest.read(build)
    passages = _stored(build)
    corpus = load_corpus(Path(settings.corpus_dir))
    texts = [p.embed_text for p in passages] + list(sentence_table(passages).texts(corpus))
    dense = DenseIndex.load(build / "dense.faiss", manifest.index_type)  # type: ignore[arg-type]
    built_passages = dense.vectors(np.arange(len(passages)))
    built_sentences = np.load(build / "sentences.npy").astype(np.float32)  # stored float16
    cache = VectorCache(Path(settings.index_dir) / CACHE_FILE, embedder.weights_sha256, embedder.dim)
    try:
        cached = cache.get(texts)
    finally:
        cache.close()
    assert set(cached) == set(texts)
    vectors = np.stack([cached[t] for t in texts])
    assert np.allclose(vectors[: len(passages)], built_passages, atol=1e-6)
    assert np.allclose(vectors[len(passages) :], built_sentences, atol=5e-4)  # float16 rounding


def test_without_the_builds_own_vectors_a_change_embeds_only_the_new_paper(
    tmp_path: Path, settings: Settings, built_index: Path, embedder: Embedder
) -> None:
    """The cache a full build filled stands in for the current build's vectors (another model file, an
    index type whose vectors cannot be read back): nothing old is embedded again."""
    copy = _copy(tmp_path, settings)
    current = Previous.load(Path(copy.index_dir), embedder, Path(copy.corpus_dir))
    blind = Previous(current.documents, current.sources, vectors={})
    staged = _stage(copy)
    nxt = build_next(copy, embedder, add=staged, remove=[], reason="add", previous=blind)
    new_passages = [p for p in _stored(nxt.build) if p.doc_id == staged[0].document.id]
    assert nxt.passages_embedded == len({p.embed_text for p in new_passages}) > 0
    assert nxt.reused_documents == len(current.documents)
    assert {"chunk", "facts", "embed (beside the steps)", "indexes"} <= set(nxt.stage_seconds)
