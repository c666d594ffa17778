"""Trial extraction on the real documents: dev questions, evidence offsets, outcomes, phases and OCR noise."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from conftest import DOC_000, DOC_003, SHARED

from qa.errors import NotFound
from qa.facts import FactStore, Trial, expand_query, parse_question
from qa.facts.phases import normalize_phase, phase_numbers
from qa.facts.studies import NCT_RE, name_key
from qa.facts.vocab import MATCH_TEMPLATE, _alias_pattern
from qa.services import Services

FACTS_DEV = SHARED / "eval" / "facts_dev.jsonl"


@pytest.fixture(scope="module")
def store(services: Services) -> FactStore:
    assert isinstance(services.facts, FactStore)
    return services.facts


def describes(store: FactStore, text: str) -> Callable[[Trial], bool]:
    """A predicate for a dev-set description: its NCT id, else its study name, else its drugs (and phase)."""
    ncts = NCT_RE.findall(text)
    if ncts:
        return lambda t: bool(set(ncts) & set(t.nct_ids))
    named = [t.id for t in store.trials if t.name and name_key(t.name) in name_key(text.split("(")[0])]
    if named:
        return lambda t: t.id in named
    head = text.split("(")[0]
    drugs = {m.name for m in store.vocab.find(head) if m.kind == "drug"}
    classes = {m.name for m in store.vocab.find(head) if m.kind == "class"}
    conditions = {m.name for m in store.vocab.find(head) if m.kind == "condition"}
    phase = normalize_phase(head)
    stated = re.findall(r"\b([A-Za-z]+) (\d+(?:\.\d+)?%)", text[len(head) :])

    def match(t: Trial) -> bool:
        ok = (
            drugs <= set(t.interventions)
            and classes <= set(t.drug_classes)
            and conditions <= set(t.conditions)
        )
        ok = ok and all(any(o.measure == m and o.value == v for o in t.outcomes) for m, v in stated)
        return ok and (phase is None or bool(phase_numbers(phase) & phase_numbers(t.phase)))

    return match


def dev_rows() -> list[dict[str, object]]:
    return [json.loads(line) for line in FACTS_DEV.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("row", dev_rows(), ids=lambda r: str(r["id"]))
def test_dev_questions_return_every_expected_study_and_none_of_the_others(
    store: FactStore, row: dict
) -> None:
    found = store.answer_trials(row["question"])
    assert found is not None, "a question about trials must be recognised as one"
    for text in row["expected"]:
        hits = [t for t in found if describes(store, text)(t)]
        assert len(hits) == 1, f"{text!r}: {[t.label for t in found]}"
    for text in row["not_expected"]:
        text = re.sub(r"\(no [^)]*\)", "", text)
        assert not [t for t in found if describes(store, text)(t)], text


def test_headline_question_returns_exactly_the_four_studies(store: FactStore) -> None:
    found = store.answer_trials("Which trials combine TLR9 agonists with pembrolizumab?")
    assert found is not None and len(found) == 4
    for t in found:
        assert "pembrolizumab" in t.interventions and "TLR9 agonist" in t.drug_classes
    quotes = " ".join(t.primary.quote for t in found)
    assert "another TLR9 agonist, CMP-001" in quotes and "I-SPY2" in quotes


def test_every_fact_quotes_the_document_at_its_offsets(store: FactStore, services: Services) -> None:
    docs = services.index.documents
    passages = {p.id for p in services.index.passages}
    for t in store.trials:
        assert t.primary.kind == "body", f"{t.id}: table text alone never makes a trial"
        for e in t.evidence:
            assert docs[e.doc_id].text[e.start : e.end] == e.quote
            assert e.passage_id in passages
        for o in t.outcomes:
            assert docs[t.primary.doc_id].text[o.start : o.end] == o.text or any(
                docs[e.doc_id].text[o.start : o.end] == o.text for e in t.evidence
            )


def test_one_study_mentioned_in_several_places_is_one_record(store: FactStore) -> None:
    pivot = store.trial("PIVOT-02")
    assert pivot.nct_ids == ["NCT02983045"]
    assert sum(1 for t in store.trials if "NCT02983045" in t.nct_ids) == 1
    assert len({e.start for e in pivot.evidence if e.kind == "body"}) >= 2
    assert {e.kind for e in pivot.evidence} == {"body", "table"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a phase 3, double-blind study", "Phase 3"),
        ("the phase III TACTI-002 trial", "Phase 3"),
        ("an open-label phase Ia/Ib clinical trial", "Phase 1a/1b"),
        ("the phase II/III RELATIVITY-047 trial", "Phase 2/3"),
        ("a multicenter phase 1/2 clinical trial", "Phase 1/2"),
        ("Phase Ib clinical trial on", "Phase 1b"),
        ("Phase II and III trials on NKTR-214", "Phase 2 or 3"),
        ("phase lll TACTI-002 trial", "Phase 3"),  # OCR: l for I
        ("Phase Il SAPPHIRE study", "Phase 2"),
        ("unresectable stage III or IV melanoma", None),  # a stage is not a phase
        ("T-cell arrest in the G1 phase, inhibit", None),
    ],
)
def test_phase_normalization(text: str, expected: str | None) -> None:
    assert normalize_phase(text) == expected


def test_phases_on_the_extracted_trials(store: FactStore) -> None:
    assert store.trial("RELATIVITY-047").phase == "Phase 2/3"
    assert store.trial("NCT02526017").phase == "Phase 1a/1b"
    assert store.trial("PIVOT-02").phase == "Phase 1/2"  # the table's "Phase Il" does not override the body
    assert store.trial("MRTX-500").phase == "Phase 2"  # nor does its "Phase I study (MRTX-500)"
    assert store.trial("Atalante-1").phase == "Phase 3"  # stated in the clause after the semicolon


def _outcome(trial: Trial, measure: str) -> dict[str, object]:
    hits = [o.to_dict() for o in trial.outcomes if o.measure == measure]
    assert hits, f"{trial.label}: no {measure} in {[o.measure for o in trial.outcomes]}"
    return hits[0]


def test_outcomes_with_values_and_denominators(store: FactStore) -> None:
    pivot = store.trial("PIVOT-02")
    orr = _outcome(pivot, "ORR")
    assert (orr["value"], orr["n"], orr["denominator"]) == ("59.5%", 22, 37)
    cr = _outcome(pivot, "CR")
    assert (cr["value"], cr["n"]) == ("18.9%", 7)
    mrtx = store.trial("MRTX-500")
    assert _outcome(mrtx, "ORR")["detail"] == "12/68"
    assert _outcome(mrtx, "mPFS")["value"] == "5.7 months"
    assert _outcome(mrtx, "mOS")["value"] == "14.9 months"
    iov = store.trial("IOV-COM-202")
    assert _outcome(iov, "DCR")["value"] == "64.3%"  # from the sentence after the one naming the study
    assert _outcome(iov, "mDOR")["value"] == "not reached"
    (cmp_ib,) = [t for t in store.trials if t.phase == "Phase 1b" and "vidutolimod" in t.interventions]
    assert (_outcome(cmp_ib, "ORR")["n"], _outcome(cmp_ib, "ORR")["denominator"]) == (28, 83)
    assert _outcome(cmp_ib, "CR")["n"] == 6
    assert _outcome(cmp_ib, "PR")["n"] == 22  # "partial response (PR) in 22 patients"
    (sd101,) = [t for t in store.trials if {"SD-101", "pembrolizumab"} == set(t.interventions)]
    assert _outcome(sd101, "ORR")["value"] == "78%"
    assert _outcome(sd101, "12-month PFS")["value"] == "88%"


def test_ocr_misprints_never_become_trials(store: FactStore) -> None:
    ids = {n for t in store.trials for n in t.nct_ids}
    for misprint, body_id in [
        ("NCT08099109", "NCT03099109"),
        ("NGT03004183", "NCT03004183"),
        ("NCT02078859", "NCT02978859"),
    ]:
        assert misprint not in ids
        with pytest.raises(NotFound):
            store.trial(misprint)
        corrected = [e for e in store.trial(body_id).evidence if e.role == "ocr-corrected"]
        assert corrected and corrected[0].kind == "table" and misprint in (corrected[0].note or "")
        assert any(n["text"] == misprint and n["resolved_to"] == body_id for n in store.ocr)


def test_settings_conditions_status_and_designations(store: FactStore) -> None:
    assert "PD-1/PD-L1-resistant" in store.trial("NCT02680184").setting
    assert "neoadjuvant" in store.trial("I-SPY2").setting
    assert {"second-line", "third-line"} <= set(store.trial("DUBLIN-3").setting)
    assert store.trial("INSIGHT-004").status == "ongoing"
    assert store.trial("NCT04111510").conditions == [
        "cervical cancer"
    ]  # from the sentence before, naming LN-145
    assert "FDA Breakthrough Therapy" in store.drug("LN-145").designations
    assert "FDA Fast Track" in store.drug("eftilagimod alpha").designations
    assert "FDA Orphan Drug" in store.drug("ITIL-168").designations


def test_drugs_aliases_classes_and_what_the_documents_taught(store: FactStore) -> None:
    cmp = store.drug("CMP-001")
    assert cmp.name == "vidutolimod" and "TLR9 agonist" in cmp.classes
    assert store.drug("LN-144").name == "lifileucel"
    assert store.drug("IMP321").name == store.drug("LAG-3Ig").name == "eftilagimod alpha"
    assert store.drug("FPA008").name == "cabiralizumab"
    bempeg = store.drug("Bempegaldes")  # learned: "Bempegaldes (NKTR-214) is a CD122 agonist"
    assert bempeg.name == "bempegaldesleukin" and "IL-2 pathway agonist" in bempeg.classes
    assert any(f["value"] == "Bempegaldes" for f in bempeg.learned)
    cpg = store.drug("CpG")
    assert any(f["doc_id"] == DOC_003 and f["value"] == "TLR9 agonist" for f in cpg.learned)


def test_counts_per_document(store: FactStore) -> None:
    counts = store.counts()
    assert counts[DOC_000]["trials"] >= 40 and counts[DOC_000]["outcomes"] >= 15
    assert counts[DOC_003]["trials"] >= 1 and counts[DOC_003]["drugs"] >= 5


@pytest.mark.parametrize(
    ("question", "expected", "excluded"),
    [
        ("Which trials use nivolumab?", ["MRTX-500", "PIVOT-02", "NCT02526017"], ["TACTI-002"]),
        ("Which trials evaluate lifileucel?", ["C-144-01", "InnovaTIL-01", "IOV-COM-202"], ["NCT04111510"]),
        ("Which trials test cabiralizumab?", ["NCT02526017", "NCT03336216"], []),
        ("Which studies combine sitravatinib with nivolumab?", ["MRTX-500", "SAPPHIRE"], ["NCT02978859"]),
        ("Which trials evaluate eftilagimod alpha?", ["TACTI-002", "TACTI-003", "INSIGHT-004"], []),
        (
            "Which trials target LAG-3?",
            ["RELATIVITY-047", "TACTI-002", "TACTI-003", "INSIGHT-004"],
            ["SKYSCRAPER-01"],
        ),
        ("Which trials target TIGIT?", ["MK-7684A-003", "AdvanTIG-302", "SKYSCRAPER-01"], ["TACTI-002"]),
        ("Which trials target TIM-3?", ["NCT03489343", "NCT03099109"], []),
        ("Which trials target CSF-1R?", ["NCT02526017", "NCT03336216"], []),
        ("Which trials target the IL-2 pathway?", ["PIVOT-02", "NCT03138889"], []),
        ("Which trials are in melanoma?", ["RELATIVITY-047", "C-144-01", "NCT02680184"], ["DUBLIN-3"]),
        ("Which phase III trials are in NSCLC?", ["LEAP-006", "DUBLIN-3", "SKYSCRAPER-01"], ["MRTX-500"]),
        ("Which trials are in triple-negative breast cancer?", ["NCT03004183", "NCT03362060"], []),
        ("Which trials study pancreatic cancer?", ["NCT03336216"], ["NCT02526017"]),
        ("Which trials are in cervical cancer?", ["NCT04111510"], []),
        ("Which trials enrolled PD-1-resistant melanoma?", ["NCT02680184"], ["RELATIVITY-047"]),
        (
            "Which first-line NSCLC trials combine pembrolizumab with lenvatinib?",
            ["LEAP-006", "LEAP-007"],
            ["TACTI-002"],
        ),
    ],
)
def test_held_out_style_questions(
    store: FactStore, question: str, expected: list[str], excluded: list[str]
) -> None:
    found = store.answer_trials(question)
    assert found is not None
    ids = {t.id for t in found}
    for key in expected:
        assert store.trial(key).id in ids, f"{question}: missing {key}; got {[t.label for t in found]}"
    for key in excluded:
        assert store.trial(key).id not in ids, f"{question}: should not return {key}"


@pytest.mark.parametrize(
    "question",
    [
        "What is the mechanism of the TLR9 agonist SD-101?",
        "How do M2 macrophages promote tumor progression?",
        "How did HA-DOX plus HA-CpG treat glioblastoma?",
        "What is the N-803 IL-15 superagonist?",
    ],
)
def test_questions_not_about_trials(store: FactStore, question: str) -> None:
    assert store.answer_trials(question) is None


def test_or_and_and_become_groups(store: FactStore) -> None:
    query = parse_question(
        store.vocab, "Which trials evaluate the PD-L1 and LAG-3 or TIGIT pathways in NSCLC?"
    )
    assert query is not None
    assert query.groups == [[("target", "PD-L1")], [("target", "LAG-3"), ("target", "TIGIT")]]
    assert query.conditions == ["NSCLC"] and query.axis


def test_expand_query_brings_class_members_and_other_names(store: FactStore) -> None:
    terms = store.expand_query("Which trials combine TLR9 agonists with pembrolizumab?")
    assert {"SD-101", "CMP-001"} <= set(terms)
    assert "bempegaldesleukin" in expand_query(store.vocab, "What did NKTR-214 show?")
    assert "vidutolimod" not in store.expand_query("How do M2 macrophages promote tumor progression?")


def test_every_registry_id_in_body_text_is_one_trial_and_table_text_adds_none(
    store: FactStore, services: Services
) -> None:
    in_body: set[str] = set()
    for doc in services.index.documents.values():
        for block in doc.blocks:
            if block.kind in ("body", "caption"):
                in_body |= set(NCT_RE.findall(doc.text[block.start : block.end]))
    extracted = [n for t in store.trials for n in t.nct_ids]
    assert sorted(extracted) == sorted(in_body)


def test_grouped_alias_matcher_finds_what_the_flat_alternation_finds(
    store: FactStore, services: Services
) -> None:
    """The vocabulary's matcher groups aliases by first character for speed; the matches must not change."""
    grouped = store.vocab._matcher[0]
    flat_body = "|".join(_alias_pattern(s) for s in store.vocab.matched_surfaces())
    flat = re.compile(MATCH_TEMPLATE.format(flat_body), re.IGNORECASE)
    for doc in services.index.documents.values():
        spans = [m.span() for m in grouped.finditer(doc.text)]
        assert spans and spans == [m.span() for m in flat.finditer(doc.text)]
