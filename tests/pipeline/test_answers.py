"""Extractive answers: sentence choice, abstention calibrated on in- and out-of-corpus questions."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import DOC_003, SHARED, ask_blocking

from qa.answer import scope_tokens
from qa.answering.kinds import classify, holds
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
    # The bar of the hidden set's unanswerable kinds (>= 0.9 each), held here at 0.95 over both sides (none
    # wrong today; "How does CRISPR work in plants?" abstains since plants, where it asks, is unknown).
    assert len(wrong) <= 0.05 * len(rows), wrong


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


def test_a_name_no_document_mentions_is_said_plainly_and_no_trials_are_returned(services: Services) -> None:
    # "anti-PD-1 therapy" alone matches many trials; the KRAS G12C inhibitor it asks about is in neither paper
    result = ask_blocking(services, "Which KRAS G12C inhibitors have been tested with nivolumab?")
    answer = result.answer
    assert result.abstained and answer.reason == "unknown_entity"
    assert {"KRAS", "G12C"} <= set(answer.unknown)
    assert answer.text == "The indexed documents do not mention KRAS or G12C."
    assert result.trials == [] and result.nearest  # the nivolumab trials are only the nearest records


def test_a_named_trial_without_the_asked_figure_quotes_where_it_is_named(services: Services) -> None:
    result = ask_blocking(services, "What objective response rate did the SKYSCRAPER-01 trial report?")
    answer = result.answer
    assert result.abstained and answer.reason == "value_not_reported" and answer.kind == "value"
    assert answer.text.startswith("The indexed documents name SKYSCRAPER-01 but report no response rate")
    assert answer.sentences and all("SKYSCRAPER-01" in s.text for s in answer.sentences)
    assert result.trials == []


def test_a_figure_the_documents_report_for_a_named_trial_is_answered(services: Services) -> None:
    result = ask_blocking(services, "How many melanoma patients received lifileucel in the C-144-01 study?")
    assert not result.abstained and result.answer.reason == "answered" and result.answer.kind == "value"
    assert "66" in result.answer.text


def test_a_lay_paraphrase_is_answered_with_its_evidence(services: Services) -> None:
    result = ask_blocking(
        services, "Do low oxygen and acidity inside tumours contribute to treatment resistance?"
    )
    assert not result.abstained and result.answer.reason == "answered"
    assert any("hypoxia and acidification" in s.text for s in result.answer.sentences)


GENERALISATION = Path(__file__).parent.parent / "data" / "answer_generalisation.jsonl"


def test_own_questions_answered_or_abstained_as_the_documents_allow(services: Services) -> None:
    """Questions written against corpus/*.txt (not the dev set): paraphrases, values and dates answered with
    their evidence; names neither paper mentions, and figures they do not report for a named trial, not."""
    wrong = []
    rows = [json.loads(line) for line in GENERALISATION.read_text().splitlines()]
    for row in rows:
        result = ask_blocking(services, row["question"])
        if row["answerable"]:
            texts = [_norm(h.passage.text) for h in result.hits[:5]]
            cited = any(_norm(e) in t for e in row["evidence"] for t in texts)
            if result.abstained or not cited:
                wrong.append((row["question"], result.answer.reason))
        elif not result.abstained or result.trials:
            wrong.append((row["question"], result.answer.reason))
    # 73 of 76 today (the last 35 rows were written in a later session, before the changes they test); the
    # misses are lay-worded near-misses that are answered: the microbiome "in the gut", "immune brakes" in
    # type 1 diabetes prevention, "switched-on B cells" forming tertiary lymphoid structures.
    assert len(wrong) <= 0.06 * len(rows), wrong


PARAPHRASES = Path(__file__).parent.parent / "data" / "paraphrases.jsonl"


def test_lay_paraphrases_are_answered_with_their_evidence(services: Services) -> None:
    """Our own lay-worded questions (tests/data/paraphrases.jsonl): the answer does not abstain and a top-5
    passage holds the evidence. A regression floor: 15 of 22 today (4 of the misses are retrieval misses)."""
    rows = [json.loads(line) for line in PARAPHRASES.read_text().splitlines()]
    good = 0
    for row in rows:
        result = ask_blocking(services, row["question"])
        texts = [_norm(h.passage.text) for h in result.hits[:5]]
        good += not result.abstained and any(_norm(e) in t for e in row["evidence"] for t in texts)
    assert good >= 0.6 * len(rows), good


def test_a_question_about_a_figure_is_answered_from_its_caption(services: Services) -> None:
    result = ask_blocking(services, "What does Figure 1 show?", documents=[DOC_003])
    assert not result.abstained and result.answer.reason == "answered"
    cited = {result.hits[s.hit_index].passage.kind for s in result.answer.sentences}
    assert cited == {"caption"}, cited


def test_a_list_of_things_no_trial_record_holds_is_answered_from_the_sentences(services: Services) -> None:
    result = ask_blocking(services, "Which monoclonal antibody against Siglec-15 is being tested clinically?")
    assert not result.abstained and "NC318" in result.answer.text


def test_question_kinds() -> None:
    assert classify("What median PFS did X achieve?").measure.name == "progression-free survival"  # type: ignore[union-attr]
    assert classify("How many patients were treated?").kind == "value"
    assert classify("Why do tumours resist?").kind == "mechanism"
    assert classify("Is there an approved vaccine?").kind == "yesno"
    rate = classify("What response rate did X reach?")
    assert holds(rate, "The ORR was 59%.") and not holds(rate, "PD-L1 ≥ 50% patients were enrolled.")
    count = classify("How many patients were enrolled in LEAP-006?")
    assert holds(count, "It treated 66 patients.") and holds(count, "a total of 1,234 patients")
    assert not holds(count, "LEAP-006 (NCT03829319) was a phase 3 study of IL-2 in CD8 T cells (22).")
    assert holds(classify("How long did expression last?"), "highest from day 2 to day 4")


def test_a_trial_filter_nothing_matches_is_said_plainly(services: Services) -> None:
    result = ask_blocking(services, "Which trials test pembrolizumab in glioblastoma?")
    assert result.abstained and result.answer.reason == "no_matching_trial" and result.trials == []
    assert result.answer.text.startswith("No trial in the indexed documents matches pembrolizumab")


def test_a_yes_no_question_about_trials_is_answered_only_by_sentences_naming_what_it_asks(
    services: Services,
) -> None:
    named = ask_blocking(services, "Has any CAR-NK cell therapy reached phase III trials?")
    assert not named.abstained and "No CAR-NK cell therapy has entered phase III" in named.answer.text
    # the best sentences are about oncolytic viruses in mice, and glioblastoma is not among them
    elsewhere = ask_blocking(
        services,
        "Is there evidence that oncolytic virus therapy works in glioblastoma patients in a phase 3 trial?",
    )
    assert elsewhere.abstained and elsewhere.answer.reason == "no_matching_trial" and not elsewhere.trials


def test_the_scope_a_question_closes_with() -> None:
    assert scope_tokens("How does CRISPR work in plants?") == {"plant"}
    assert scope_tokens("Which trials use nivolumab in the first-line setting?") == {"set"}
    assert scope_tokens("How does plinabulin work?") == frozenset()
