"""Registry ids of every registry papers cite, as papers write them, and the lung-cancer trial's UMIN id."""

from __future__ import annotations

import re

import pytest
from papers_store import papers_store, trials_of

from qa.facts.registry import find_registry_ids, registry_of


@pytest.mark.parametrize(
    ("text", "registry", "value"),
    [
        ("ClinicalTrials.gov registration ID: NCT00874107.", "ClinicalTrials.gov", "NCT00874107"),
        ("Medical Information Network in Japan (UMIN: 000007525).", "UMIN", "UMIN000007525"),
        ("registered as UMIN000012345 in 2013", "UMIN", "UMIN000012345"),
        ("UMIN-CTR ID 000001234", "UMIN", "UMIN000001234"),
        ("ISRCTN registry (ISRCTN 12345678)", "ISRCTN", "ISRCTN12345678"),
        ("EudraCT number 2004-001234-12", "EudraCT", "EudraCT 2004-001234-12"),
        ("Chinese registry ChiCTR-TRC-12002500", "ChiCTR", "ChiCTR-TRC-12002500"),
        ("registered (ChiCTR2000029308)", "ChiCTR", "ChiCTR2000029308"),
        ("JapicCTI-101234 and", "JapicCTI", "JapicCTI-101234"),
        ("jRCT2031190012.", "jRCT", "jRCT2031190012"),
        ("ACTRN12615000123456 (ANZCTR)", "ANZCTR", "ACTRN12615000123456"),
    ],
)
def test_registry_ids_as_papers_write_them(text: str, registry: str, value: str) -> None:
    found = find_registry_ids(text)
    assert [(r.registry, r.value) for r in found] == [(registry, value)]
    span = text[found[0].start : found[0].end]
    assert re.sub(r"\D", "", value) == re.sub(r"\D", "", span)  # the span is the id as written
    assert registry_of(value) == registry


@pytest.mark.parametrize(
    "text",
    [
        "the UMIN of Japan (file name: CCCI)",
        "NCT0087410 has seven digits",
        "XNCT00874107",
        "EudraCT was consulted",
    ],
)
def test_near_misses_are_no_ids(text: str) -> None:
    assert find_registry_ids(text) == []


def test_a_trial_registered_only_in_umin_gets_that_id_and_no_nct_id() -> None:
    store, docs = papers_store()
    (trial,) = trials_of(store, "cii2015-killer-t-dc-lung-phase3")
    assert trial.registry_ids == ["UMIN000007525"] and trial.nct_ids == []
    assert trial.id == "UMIN000007525" and store.trial("UMIN000007525") == trial
    quotes = [e.quote for e in trial.evidence]
    assert any("UMIN: 000007525" in q for q in quotes)
