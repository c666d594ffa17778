"""Sentence scans kept across the learning passes and extraction: reused only while nothing the vocabulary
learned since could occur in the sentence, and the facts they give are those of scanning afresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS
from readers.paperset import PDF_PAPERS, XML_PAPERS, require_papers, word_count

from qa.chunking import chunk_document
from qa.corpus import load_corpus, load_document
from qa.documents import Document
from qa.facts.build import extract_facts
from qa.facts.learn import grow
from qa.facts.scan import Scans, _ScanFile
from qa.facts.vocab import Vocabulary
from qa.shelf import DocumentShelf


def _doc(text: str) -> Document:
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / "d.txt").write_text(text, encoding="utf-8")
    return load_corpus(folder).documents[0]


def test_a_scan_is_redone_only_when_a_learned_name_could_be_in_the_sentence() -> None:
    vocab = Vocabulary.load()
    doc = _doc(
        "Patients received Zorbatinib plus pembrolizumab.\n\nThe tumours of mice shrank after nivolumab.\n"
    )
    scans = Scans(vocab)
    first, second = scans.sentences(doc)
    assert [m.name for m in scans.mentions(doc, first)] == ["pembrolizumab"]
    assert [m.name for m in scans.mentions(doc, second)] == ["nivolumab"]
    assert vocab.add_alias("nivolumab", "Nivoquix")  # in neither sentence: both scans stay current
    assert scans.current(doc, first) and scans.current(doc, second)
    vocab.ensure_drug("Zorbatinib")  # a new drug, named in the first sentence only
    assert not scans.current(doc, first) and scans.current(doc, second)
    again = scans.mentions(doc, first)
    assert again == vocab.find(doc.text, first.start, first.end)
    assert {m.name for m in again} == {"Zorbatinib", "pembrolizumab"}
    assert scans.current(doc, first)


def test_facts_learned_through_scans_are_those_of_scanning_every_time() -> None:
    """Two learning passes, the second reading only sentences a learned name could touch, learn what two full
    passes learn from the seed corpus (each sentence scanned afresh against the grown vocabulary)."""
    documents = load_corpus(CORPUS).documents
    ours = Vocabulary.load()
    facts = grow(ours, documents, Scans(ours))

    class Fresh(Scans):  # never reuses a scan
        def current(self, doc: Document, scan: object) -> bool:  # type: ignore[override]
            return False

    theirs = Vocabulary.load()
    assert [f.to_dict() for f in grow(theirs, documents, Fresh(theirs))] == [f.to_dict() for f in facts]
    assert ours.to_dict() == theirs.to_dict() and len(facts) > 20


def test_scans_find_learned_names_after_characters_past_latin_1() -> None:
    """A document's sentence keys are kept as one UTF-8 string: a sentence after a '≥' or a Greek letter is
    still looked up at its own place, and a name with a Greek letter is found in its sentence only."""
    vocab = Vocabulary.load()
    doc = _doc(
        "Grade ≥3 events were rare with pembrolizumab.\n\nPatients received Zorbatinib weekly.\n\n"
        "The IFN-γ response to ωvomab was strong.\n"
    )
    scans = Scans(vocab)
    sentences = scans.sentences(doc)
    assert len(sentences) == 3
    for s in sentences:
        scans.mentions(doc, s)
    vocab.ensure_drug("Zorbatinib")
    assert [scans.current(doc, s) for s in sentences] == [True, False, True]
    assert {m.name for m in scans.mentions(doc, sentences[1])} == {"Zorbatinib"}
    vocab.ensure_drug("Ωvomab")
    assert [scans.current(doc, s) for s in sentences] == [True, True, False]
    assert "Ωvomab" in {m.name for m in scans.mentions(doc, sentences[2])}
    assert all(scans.current(doc, s) for s in sentences)


def test_scans_spilled_to_a_scratch_file_give_the_facts_of_scans_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build's documents are on a shelf and so are their sentence scans: all but the last ``KEEP``
    documents' are written to an unnamed file beside it and read back when scanned again. With one kept,
    every document's scans go out and come back between the passes, and the facts of the seed corpus and
    every shared paper (JATS and PDF) are those of scans held in memory."""
    require_papers()
    files = [*sorted(CORPUS.glob("*.txt")), *XML_PAPERS, *PDF_PAPERS]
    listed = [load_document(p, p.parent, None, 20_000_000) for p in files]
    passages = [p for d in listed for p in chunk_document(d, word_count, max_tokens=200, overlap=1)]
    held = extract_facts(listed, passages, Vocabulary.load()).to_dict()

    shelf = DocumentShelf(tmp_path)
    for doc in listed:
        shelf.append(doc)
    writes: list[str] = []
    write = _ScanFile.write

    def counted(self: _ScanFile, doc_id: str, scans: object) -> None:
        writes.append(doc_id)
        write(self, doc_id, scans)  # type: ignore[arg-type]

    monkeypatch.setattr(Scans, "KEEP", 1)
    monkeypatch.setattr(_ScanFile, "write", counted)
    spilled = extract_facts(shelf, passages, Vocabulary.load()).to_dict()
    assert spilled == held and len(held["trials"]) > 30
    assert set(writes) == {d.id for d in listed} and len(writes) >= 3 * (len(listed) - 1)  # each pass
    assert [p.name for p in tmp_path.iterdir()] == []  # unnamed scratch files: nothing left behind
    shelf.close()
