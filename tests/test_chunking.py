"""Passages as units: within the model's word-piece limit, exact offsets, one section and one kind each, the
sentence overlap of body text, long sentences cut at word boundaries, nothing of the text lost."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS, DOC_000

from qa.chunking import Passage, chunk_document, embed_text, passage_id
from qa.corpus import load_corpus
from qa.documents import Document
from qa.encoding import Embedder
from qa.sentences import split_sentences

MODEL_LIMIT = 256  # all-MiniLM-L6-v2's max_seq_length


def _load(folder: Path, doc_id: str | None = None) -> Document:
    corpus = load_corpus(folder)
    assert not corpus.skipped, corpus.skipped
    doc = corpus.get(doc_id) if doc_id else corpus.documents[0]
    assert doc is not None
    return doc


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Document:
    """A seed document (body text, captions and an OCR'd table) copied out of the corpus on its own."""
    folder = tmp_path_factory.mktemp("seed")
    shutil.copy(CORPUS / f"{DOC_000}.txt", folder)
    return _load(folder, DOC_000)


@pytest.fixture(scope="module")
def two_sections(tmp_path_factory: pytest.TempPathFactory) -> Document:
    """Two short sections that would fit one passage together, and a table."""
    folder = tmp_path_factory.mktemp("small")
    (folder / "small.md").write_text(
        "# Methods\n\nWe enrolled 40 patients with advanced melanoma. They received pembrolizumab every three "
        "weeks.\n\n| Arm | Patients | ORR |\n|---|---|---|\n| Pembrolizumab | 40 | 40% |\n| Placebo | 38 | 5% |\n\n"
        "# Results\n\nThe objective response rate was 40% (1). Grade 3 adverse events occurred in 12%.\n",
        encoding="utf-8",
    )
    return _load(folder)


def _chunk(doc: Document, embedder: Embedder, max_tokens: int = 200, overlap: int = 1) -> list[Passage]:
    passages = chunk_document(doc, embedder.count_tokens, max_tokens=max_tokens, overlap=overlap)
    assert passages
    return passages


def _section_of(doc: Document, offset: int) -> tuple[str, str]:
    block = next(b for b in doc.blocks if b.start <= offset < b.end)
    return block.section_id, block.kind


@pytest.mark.parametrize("max_tokens", [MODEL_LIMIT, 200, 64])
def test_every_passage_fits_the_model_with_its_title_and_round_trips(
    seed: Document, embedder: Embedder, max_tokens: int
) -> None:
    for p in _chunk(seed, embedder, max_tokens=max_tokens):
        assert p.text == seed.text[p.start : p.end] and p.text.strip() == p.text
        assert p.id == passage_id(seed.id, p.start, p.end) and p.doc_id == seed.id
        exact = embedder.count_tokens([embed_text(p.section[-1] if p.section else "", p.text)])[0]
        assert p.tokens == exact <= max_tokens <= MODEL_LIMIT
        assert p.embed_text == embed_text(p.section[-1] if p.section else "", p.text)
        assert p.sentences[0][0] == p.start and p.sentences[-1][1] == p.end
        assert all(a[1] <= b[0] for a, b in zip(p.sentences, p.sentences[1:], strict=False))
        assert Passage.from_dict(p.to_dict()) == p


def test_passages_keep_to_one_section_and_one_kind(seed: Document, embedder: Embedder) -> None:
    passages = _chunk(seed, embedder)
    assert {p.kind for p in passages} == {"body", "caption", "table"}
    for p in passages:
        assert p.section == seed.section_path(p.section_id)
        for s, e in p.sentences:  # every sentence lies in a block of the passage's own section and kind
            assert _section_of(seed, s) == (p.section_id, p.kind)
            assert _section_of(seed, e - 1) == (p.section_id, p.kind)


def test_short_sections_are_not_merged_and_headings_are_never_passages(
    two_sections: Document, embedder: Embedder
) -> None:
    passages = _chunk(two_sections, embedder, max_tokens=MODEL_LIMIT)
    doc = two_sections
    assert [(p.section, p.kind) for p in passages] == [
        (["Methods"], "body"),
        (["Methods"], "table"),
        (["Results"], "body"),
    ]
    body, table, results = passages
    assert len(body.sentences) == 2 and results.refs == [1]
    # a table is cut into its rows (lines), never into sentences
    lines = [line.strip() for line in doc.text[table.start : table.end].splitlines() if line.strip()]
    assert [doc.text[s:e] for s, e in table.sentences] == lines
    headings = [b for b in doc.blocks if b.kind == "heading"]
    assert len(headings) == 2
    assert not any(p.start < h.end and h.start < p.end for h in headings for p in passages)


def test_a_reference_list_is_kept_in_the_document_but_never_a_passage(
    embedder: Embedder, tmp_path: Path
) -> None:
    (tmp_path / "paper.xml").write_text(
        '<?xml version="1.0"?><article><front><article-meta><title-group><article-title>Pembrolizumab in '
        "melanoma</article-title></title-group></article-meta></front><body><sec><title>Results</title><p>The "
        'objective response rate was 40% <xref ref-type="bibr" rid="r1">1</xref>. Grade 3 adverse events '
        'occurred in 12%.</p></sec></body><back><ref-list><ref id="r1"><label>1</label><mixed-citation>Smith J. '
        "Pembrolizumab in advanced melanoma. N Engl J Med. 2015.</mixed-citation></ref></ref-list></back></article>",
        encoding="utf-8",
    )
    doc = _load(tmp_path)
    references = [b for b in doc.blocks if b.kind == "reference"]
    assert references and "Smith J" in doc.text
    passages = _chunk(doc, embedder)
    assert [p.section for p in passages] == [["Results"]] and passages[0].refs == [1]
    assert not any(p.start < r.end and r.start < p.end for r in references for p in passages)


@pytest.mark.parametrize("overlap", [0, 1, 2])
def test_body_passages_repeat_the_last_sentences_of_the_one_before(
    seed: Document, embedder: Embedder, overlap: int
) -> None:
    passages = _chunk(seed, embedder, max_tokens=96, overlap=overlap)
    pairs = [
        (a, b)
        for a, b in zip(passages, passages[1:], strict=False)
        if a.section_id == b.section_id and a.kind == b.kind
    ]
    body = [(a, b) for a, b in pairs if a.kind == "body" and len(a.sentences) > overlap]
    assert body
    for a, b in body:
        if overlap:
            assert b.sentences[:overlap] == a.sentences[-overlap:]
        else:
            assert a.end <= b.start
    for a, b in pairs:  # tables and captions never overlap
        if a.kind != "body":
            assert a.end <= b.start


def test_no_sentence_is_lost_and_without_overlap_none_is_repeated(seed: Document, embedder: Embedder) -> None:
    passages = _chunk(seed, embedder, max_tokens=MODEL_LIMIT, overlap=0)
    body = [p for p in passages if p.kind == "body"]
    spans = [s for p in body for s in p.sentences]
    assert len(spans) == len(set(spans))
    expected = [
        s for b in seed.blocks if b.kind == "body" for s in split_sentences(seed.text, b.start, b.end)
    ]
    assert sorted(spans) == sorted(expected)


def test_a_sentence_over_the_budget_is_cut_at_word_boundaries(embedder: Embedder, tmp_path: Path) -> None:
    seed_text = (CORPUS / f"{DOC_000}.txt").read_text(encoding="utf-8")
    # real words, without their punctuation, joined into one sentence far over the budget
    words = [w for w in (re.sub(r"[^\w-]", "", w) for w in seed_text.split()[:400]) if w]
    (tmp_path / "long.txt").write_text("Results\n\n" + " ".join(words) + "\n", encoding="utf-8")
    doc = _load(tmp_path)
    assert len(split_sentences(doc.text, 0, len(doc.text))) <= 2  # the title line and the long sentence
    passages = _chunk(doc, embedder, max_tokens=64, overlap=0)
    assert len(passages) > 4
    for p in passages:
        assert p.tokens <= 64
        assert doc.text[p.start - 1].isspace() and (p.end == len(doc.text) or doc.text[p.end].isspace())
    joined = " ".join(p.text for p in passages)
    assert joined.split() == words  # every word once, in order


def test_a_document_of_headings_only_is_one_passage_not_none(embedder: Embedder, tmp_path: Path) -> None:
    """A record that is a title and nothing else (read as a numbered heading) stays searchable: with no body,
    caption or table text at all, its headings are its passages."""
    title = "2. Checkpoint Inhibitors in Advanced Melanoma: Roles and Limitations"
    (tmp_path / "title_only.txt").write_text(title + "\n", encoding="utf-8")
    doc = _load(tmp_path)
    assert [b.kind for b in doc.blocks] == ["heading"]  # as the plain-text reader reads it
    passages = _chunk(doc, embedder, max_tokens=MODEL_LIMIT)
    assert [(p.kind, p.text) for p in passages] == [
        ("body", doc.text[doc.blocks[0].start : doc.blocks[0].end])
    ]
    assert "Checkpoint Inhibitors in Advanced Melanoma" in passages[0].text
    assert passages[0].id == passage_id(doc.id, passages[0].start, passages[0].end)
