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
