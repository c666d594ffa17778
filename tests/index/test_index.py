"""Passages, the built index and its manifest: token limits, exact offsets, stable ids, refusing mismatches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, DOC_000, ROOT

from qa.encoding import Embedder
from qa.errors import IndexCorrupt, IndexMismatch, IndexMissing
from qa.facts import FACTS_FILE, FactStore
from qa.index.build import build_index, current_path
from qa.index.manifest import IndexManifest
from qa.index.store import SearchIndex
from qa.index.tables import STORE_FILE, Passages, Store
from qa.services import Services
from qa.settings import Settings


def test_every_passage_fits_the_model_and_round_trips(services: Services, embedder: Embedder) -> None:
    index = services.index
    assert len(index.passages) > 100
    texts = [p.embed_text for p in index.passages]
    counts = embedder.count_tokens(texts)
    assert max(counts) <= 256
    assert max(counts) <= services.settings.chunk_max_tokens
    for p, n in zip(index.passages, counts, strict=True):
        source = index.documents[p.doc_id].text
        assert source[p.start : p.end] == p.text
        assert p.tokens == n
        assert p.section and p.kind in ("body", "caption", "table")
        for s, e in p.sentences:
            assert p.start <= s < e <= p.end


def test_passages_carry_sections_kinds_and_refs(services: Services) -> None:
    ps = [p for p in services.index.passages if p.doc_id == DOC_000]
    assert {p.kind for p in ps} == {"body", "caption", "table"}
    tlr9 = next(p for p in ps if "another TLR9 agonist, CMP-001" in p.text)
    assert tlr9.section[-1] == "2.2.3 Enhancing Antigen Presentation"
    assert all(p.section == ["Table 1"] for p in ps if p.kind == "table")
    with_refs = next(p for p in ps if "(82)" in p.text)
    assert 82 in with_refs.refs


def test_manifest_records_what_built_the_index(built_index: Path, services: Services) -> None:
    m = IndexManifest.read(built_index)
    assert m.model == "all-MiniLM-L6-v2"
    assert m.model_weights_sha256 == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert m.dim == 384 and m.index_type == "flat"
    assert m.chunking == services.settings.chunking
    assert m.passages == len(services.index.passages) and m.documents == 2
    assert {"faiss-cpu", "torch", "sentence-transformers"} <= set(m.library_versions)
    assert m.corpus_hash and m.built_at and "dense.faiss" in m.files


def test_same_corpus_and_settings_give_the_same_ids(
    tmp_path: Path, embedder: Embedder, services: Services
) -> None:
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path / "again")
    path = build_index(settings, embedder)
    ids = [p.id for p in Passages(Store(path / STORE_FILE))]
    assert ids == [p.id for p in services.index.passages]


def test_load_refuses_other_settings_and_says_how_to_rebuild(settings: Settings, built_index: Path) -> None:
    other = settings.model_copy(update={"chunk_max_tokens": 128})
    with pytest.raises(IndexMismatch) as err:
        SearchIndex.load(other)
    assert "chunking" in err.value.message and "qa index" in err.value.message
    with pytest.raises(IndexMissing):
        SearchIndex.load(settings.model_copy(update={"index_dir": settings.index_dir / "nowhere"}))


def test_changed_corpus_is_detected(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(
        "Introduction\n\nPembrolizumab is an anti-PD-1 antibody used in melanoma.\n"
    )
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings, embedder)
    SearchIndex.load(settings)
    (corpus / "a.txt").write_text("Introduction\n\nNivolumab is an anti-PD-1 antibody used in melanoma.\n")
    with pytest.raises(IndexMismatch, match="corpus"):
        SearchIndex.load(settings)


def test_corrupted_file_is_named(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Results\n\nThe ORR was 40% in the pembrolizumab arm.\n")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    path = build_index(settings, embedder)
    data = (path / "dense.faiss").read_bytes()
    (path / "dense.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorrupt, match="dense.faiss"):
        SearchIndex.load(settings)


def _qa(
    *args: str, env_extra: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_killed_build_leaves_the_previous_index(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    first = _qa("index", "--quiet", "--index-dir", str(index_dir))
    assert first.returncode == 0, first.stderr
    before = os.readlink(current_path(index_dir))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "index", "--index-dir", str(index_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until it is embedding, then kill it hard
        if "embedding" in line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert os.readlink(current_path(index_dir)) == before
    loaded = SearchIndex.load(Settings(corpus_dir=CORPUS, index_dir=index_dir))
    assert len(loaded.passages) > 100


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"   \n\n  ", "empty"),
        ("binary.txt", bytes(range(256)) * 10, "binary"),
        ("latin1.txt", "Caf\u00e9 r\u00e9sum\u00e9 text".encode("latin-1"), "UTF-8"),
    ],
)
def test_bad_files_are_skipped_with_their_name(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    from qa.corpus import load_corpus

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / name).write_bytes(content)
    (corpus / "good.txt").write_text("Results\n\nNivolumab improved survival in melanoma.\n")
    loaded = load_corpus(corpus)
    assert [d.id for d in loaded.documents] == ["good"]
    assert loaded.sources is not None and [rel for rel, _ in loaded.sources] == ["good.txt"]
    assert len(loaded.skipped) == 1 and name in loaded.skipped[0] and message in loaded.skipped[0]


def test_oversized_file_is_skipped(tmp_path: Path) -> None:
    from qa.corpus import load_corpus

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "huge.txt").write_bytes(b"Pembrolizumab works. " * (50 * 1024 * 1024 // 21))
    (corpus / "good.txt").write_text("Results\n\nNivolumab improved survival in melanoma.\n")
    started = time.perf_counter()
    loaded = load_corpus(corpus, max_file_mb=20)
    assert time.perf_counter() - started < 5
    assert "huge.txt" in loaded.skipped[0] and "limit" in loaded.skipped[0]


@pytest.mark.parametrize("case", ["empty_folder", "missing_folder", "not_a_folder", "only_bad", "unreadable"])
def test_cli_bad_corpus_is_a_clear_error_and_writes_nothing(tmp_path: Path, case: str) -> None:
    corpus = tmp_path / "corpus"
    if case == "empty_folder":
        corpus.mkdir()
    elif case == "not_a_folder":
        corpus.write_text("x")
    elif case == "only_bad":
        corpus.mkdir()
        (corpus / "x.txt").write_bytes(b"\x00\x01\x02")
    elif case == "unreadable":
        corpus.mkdir()
        (corpus / "a.txt").symlink_to(tmp_path / "does-not-exist.txt")
    index_dir = tmp_path / "index"
    result = _qa("index", "--quiet", "--corpus", str(corpus), "--index-dir", str(index_dir))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(corpus) in last
    assert "Traceback" not in result.stderr
    assert not current_path(index_dir).exists()


def test_the_builds_mention_table_equals_one_made_from_the_sentences(services: Services) -> None:
    """The answerer's "does any sentence name X" index comes from the build (memory-mapped postings), and
    says exactly what one made in memory from the stored sentences says."""
    from qa.answering.entities import Mentions, question_entities
    from qa.index.keyword import tokenize

    index = services.index
    assert index.mentions is not None
    built = Mentions.from_index(index.mentions)
    made = Mentions.from_sentences(frozenset(tokenize(index.sentence_text(s))) for s in index.sentences)
    tokens = [t for t in made.tokens() if t]
    assert set(tokens) == {t for t in built.tokens() if t} and len(tokens) > 1000
    assert all(np.array_equal(built.rows_with(t), made.rows_with(t)) for t in tokens)
    questions = (
        "Which trials combine TLR9 agonists with pembrolizumab?",
        "Is nivolumab tested with SD-101?",
        "What did ESMO report on XQZ-77?",  # a code stem written with digits (ESMO2021); a name nowhere
    )
    knowns = []
    for question in questions:
        for entity in question_entities(question, services.facts.vocab if services.facts else None):
            assert built.known(entity) == made.known(entity)
            assert built.sentences_naming(entity) == made.sentences_naming(entity)
            knowns.append((entity.text, built.known(entity)))
    assert ("ESMO", True) in knowns and ("XQZ-77", False) in knowns, knowns
    assert services.terms.mentions(index).rows_with == index.mentions.rows_with  # the build's table is used


def test_the_builds_reference_map_is_the_one_its_passages_give(services: Services) -> None:
    """Figure, table and section references are mapped at build time (references.sqlite3, read a label at a
    time), not by a pass over every passage whenever an index is loaded; the map is the one the passages
    give, and finds what the in-memory map finds."""
    from qa.references import REFERENCES_DB, ReferenceMap, StoredReferences

    index = services.index
    saved = ReferenceMap.for_index(index)
    assert isinstance(saved, StoredReferences) and REFERENCES_DB in index.manifest.files
    made = ReferenceMap.from_passages(index.passages)
    assert saved.rows == made.rows and ("table", "1") in saved.rows and ("section", "2") in saved.rows
    assert services.retriever._references is not None
    assert services.retriever._references.rows == saved.rows
    for question in ("What does Table 1 list?", "Figures 1 and 2, and section 2.1?", "What is PD-1?"):
        assert saved.find(question) == made.find(question)
    assert saved.find("What is in table 1?") == made.rows[("table", "1")]


def test_a_large_builds_steps_in_a_child_process_write_what_the_thread_writes(
    tmp_path: Path, embedder: Embedder, built_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From ``STEPS_PROCESS_MIN`` passages the facts and lexicon are found in a forked child, beside the index
    writer; they write what the same build writes on the calling thread (the lexicon byte for byte), and a step's error
    comes back as it was raised."""
    from qa.errors import CorpusError
    from qa.index import build as build_module

    monkeypatch.setattr(build_module, "STEPS_PROCESS_MIN", 0)
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path / "index")
    path = build_index(settings, embedder)
    assert (path / "lexicon.json").read_bytes() == (built_index / "lexicon.json").read_bytes()
    assert FactStore(path / FACTS_FILE).to_dict() == FactStore(built_index / FACTS_FILE).to_dict()
    stages = IndexManifest.read(path).extra["stage_seconds"]
    assert {"facts", "lexicon", "waiting for the steps"} <= set(stages)

    def failing_step(work: Path, corpus: object, passages: object) -> None:
        raise CorpusError(f"{work.name}: a step that fails")

    monkeypatch.setattr(build_module, "BUILD_STEPS", [*build_module.BUILD_STEPS, failing_step])
    with pytest.raises(CorpusError, match="a step that fails"):
        build_index(settings, embedder)
    assert current_path(settings.index_dir).resolve() == path  # the failed build changed nothing
