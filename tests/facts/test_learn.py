"""A new paper teaches the fact store a drug the curated vocabulary lacks, without editing vocabulary.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS

from qa.encoding import Embedder
from qa.facts import FACTS_FILE, FactStore, Vocabulary
from qa.index.build import build_index
from qa.settings import Settings

PAPER = """Intratumoral agonists of innate immunity

Toll-like receptor agonists activate plasmacytoid dendritic cells in the tumour.

Results

The TLR9 agonist XYZ-123 was given intratumorally every week. A phase 2 trial (NCT09999999) of XYZ-123 combined with pembrolizumab in patients with PD-1-resistant melanoma reported an ORR of 40% (8/20). QRS-77 (a novel STING agonist) was tested in mice only.
"""


@pytest.fixture(scope="module")
def learned_store(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> FactStore:
    root = tmp_path_factory.mktemp("papers")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "xyz.txt").write_text(PAPER, encoding="utf-8")
    folder = build_index(Settings(corpus_dir=corpus, index_dir=root / "index"), embedder)
    assert (folder / FACTS_FILE).exists()  # written by the registered build step
    return FactStore.load(folder / FACTS_FILE)


def test_the_vocabulary_does_not_know_the_drug() -> None:
    text = (CORPUS.parent / "qa" / "data" / "vocabulary.json").read_text(encoding="utf-8")
    assert "XYZ-123" not in text and "QRS-77" not in text
    assert Vocabulary.load().resolve("XYZ-123", "drug") is None


def test_the_document_teaches_class_membership(learned_store: FactStore) -> None:
    drug = learned_store.drug("XYZ-123")
    assert drug.source == "learned"
    assert "TLR9 agonist" in drug.classes and "TLR9" in drug.targets
    assert any(f["relation"] == "class" and "TLR9 agonist XYZ-123" in f["quote"] for f in drug.learned)
    assert "STING agonist" in learned_store.drug("QRS-77").classes  # "X (a novel CLASS)"


def test_the_learned_member_answers_class_questions(learned_store: FactStore) -> None:
    found = learned_store.answer_trials("Which trials combine TLR9 agonists with pembrolizumab?")
    assert found is not None and [t.id for t in found] == ["NCT09999999"]
    trial = found[0]
    assert trial.interventions == ["XYZ-123", "pembrolizumab"]
    assert trial.phase == "Phase 2" and trial.conditions == ["melanoma"]
    assert "PD-1/PD-L1-resistant" in trial.setting
    assert [(o.measure, o.value, o.n, o.denominator) for o in trial.outcomes] == [("ORR", "40%", 8, 20)]
    assert learned_store.expand_query("Which TLR9 agonists were tested?")[:1] == ["XYZ-123"]


def test_the_fact_store_round_trips(learned_store: FactStore, tmp_path: Path) -> None:
    """Filed again from its records, or read from an older build's facts.json, the store holds the same."""
    expected = json.dumps(learned_store.to_dict(), sort_keys=True)
    again = FactStore.from_records(learned_store.records(), tmp_path / FACTS_FILE)
    assert json.dumps(again.to_dict(), sort_keys=True) == expected
    (tmp_path / "facts.json").write_text(json.dumps(learned_store.to_dict()), encoding="utf-8")
    legacy = FactStore.load(tmp_path / "facts.json")
    assert json.dumps(legacy.to_dict(), sort_keys=True) == expected
    assert legacy.path != tmp_path / "facts.json" and legacy.path.exists()  # a temporary store ...
    path = legacy.path
    del legacy
    assert not path.exists()  # ... removed with it


def test_a_code_name_with_its_letters_transposed_is_learned_as_a_spelling_variant(tmp_path: Path) -> None:
    """'NTKR-214' is NKTR-214 (bempegaldesleukin) with two letters swapped; 'SD-110' and 'NTRK-241' have
    other digits than any known code, so they are no one's misspelling."""
    from qa.corpus import load_corpus
    from qa.facts.learn import grow
    from qa.facts.scan import Scans

    (tmp_path / "a.txt").write_text(
        "A trial.\n\nPatients received NTKR-214 with nivolumab, and SD-110 with pembrolizumab; "
        "NTRK-241 was not given.\n",
        encoding="utf-8",
    )
    vocab = Vocabulary.load()
    learned = grow(vocab, load_corpus(tmp_path).documents, Scans(vocab))
    assert [(f.drug, f.relation, f.value, f.pattern) for f in learned] == [
        ("bempegaldesleukin", "alias", "NTKR-214", "spelling variant")
    ]
    assert vocab.resolve("NTKR-214", "drug") == "bempegaldesleukin"
    assert vocab.resolve("SD-110", "drug") is None and vocab.resolve("NTRK-241", "drug") is None
