"""Extractive answers: sentence choice, abstention calibrated on in- and out-of-corpus questions."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SHARED, ask_blocking

from qa.services import Services

CALIBRATION = Path(__file__).parent.parent / "data" / "abstention_questions.jsonl"


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def test_abstention_separates_answerable_from_outside_questions(services: Services) -> None:
    rows = [json.loads(line) for line in CALIBRATION.read_text().splitlines()]
    dev = [json.loads(line) for line in (SHARED / "eval" / "retrieval_dev.jsonl").read_text().splitlines()]
    rows += [{"question": d["question"], "answerable": True} for d in dev]
    wrong = []
    for row in rows:
        result = ask_blocking(services, row["question"])
        if result.abstained == row["answerable"]:
            wrong.append((row["question"], result.answer.evidence))
    assert not wrong, wrong


def test_answers_cite_one_to_four_sentences_from_returned_passages(services: Services) -> None:
    result = ask_blocking(
        services, "How does IFN-gamma from CD8+ T cells affect cystine uptake in tumor cells?"
    )
    assert 1 <= len(result.answer.sentences) <= 4
    assert "downregulates the expression of SLC3A2 and SLC7A11" in result.answer.sentences[0].text
    for s in result.answer.sentences:
        assert 0 <= s.hit_index < len(result.hits)
        hit = result.hits[s.hit_index].passage
        assert hit.start <= s.sentence.start and s.sentence.end <= hit.end


def test_dev_evidence_is_cited_in_the_answer_or_its_passages(services: Services) -> None:
    dev = [json.loads(line) for line in (SHARED / "eval" / "retrieval_dev.jsonl").read_text().splitlines()]
    missing = []
    for row in dev:
        result = ask_blocking(services, row["question"])
        texts = [_norm(h.passage.text) for h in result.hits]
        if not any(_norm(e) in t for e in row["evidence"] for t in texts):
            missing.append(row["id"])
    assert not missing


def _extract(services, question: str):  # type: ignore[no-untyped-def]
    from qa.answer import extract_answer

    qvec = services.encode_query(question)
    hits = services.retriever.search(question, k=5, query_vector=qvec)
    vocab = services.facts.vocab if services.facts else None
    return extract_answer(services.index, services.terms, question, qvec, hits, threshold=0.45, vocab=vocab)


def test_a_name_no_document_mentions_makes_the_question_unanswerable(services) -> None:  # type: ignore[no-untyped-def]
    answer = _extract(services, "What response rate did tislelizumab achieve in esophageal cancer?")
    assert answer.abstained and answer.reason == "unknown_entity"
    assert answer.unknown  # esophageal cancer (tislelizumab is named, under an alias in a table)


def test_a_named_trial_without_the_asked_figure_is_not_reported(services) -> None:  # type: ignore[no-untyped-def]
    answer = _extract(services, "What objective response rate did the SKYSCRAPER-01 trial report?")
    assert answer.abstained and answer.reason == "value_not_reported" and answer.kind == "value"
    assert answer.text.startswith("The documents name SKYSCRAPER-01 but report no response rate")


def test_a_lay_paraphrase_is_answered_with_its_evidence(services) -> None:  # type: ignore[no-untyped-def]
    answer = _extract(
        services, "Do low oxygen and acidity inside tumours contribute to treatment resistance?"
    )
    assert not answer.abstained and answer.reason == "answered"
    assert any("hypoxia and acidification" in s.text for s in answer.sentences)


def test_question_kinds() -> None:
    from qa.answering.kinds import classify, holds

    assert classify("What median PFS did X achieve?").measure.name == "progression-free survival"  # type: ignore[union-attr]
    assert classify("How many patients were treated?").kind == "value"
    assert classify("Why do tumours resist?").kind == "mechanism"
    assert classify("Is there an approved vaccine?").kind == "yesno"
    rate = classify("What response rate did X reach?")
    assert holds(rate, "The ORR was 59%.") and not holds(rate, "PD-L1 ≥ 50% patients were enrolled.")
