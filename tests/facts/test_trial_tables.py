"""Trial tables of the 2025 reviews: one record per registry id of the table, fields from the recognised
columns, the row as quote."""

from __future__ import annotations

import re

from papers_store import papers_store, trials_of

from qa.facts.studies import NCT_RE
from qa.facts.tables import CELL_SEP

EHO = "eho2025-collagen-immunotherapy-review"
STTT = "sttt2025-immune-evasion-review"


def _table_ids(doc_id: str) -> set[str]:
    _store, docs = papers_store()
    doc = docs[doc_id]
    return {n for b in doc.blocks if b.kind == "table" for n in NCT_RE.findall(doc.text[b.start : b.end])}


def test_every_registry_id_of_a_trial_table_is_one_record_quoting_its_row() -> None:
    store, docs = papers_store()
    for doc_id, expected in ((EHO, 42), (STTT, 117)):
        ids = _table_ids(doc_id)
        assert len(ids) == expected
        records = [t for t in trials_of(store, doc_id) if set(t.nct_ids) & ids]
        assert sorted(n for t in records for n in t.nct_ids) == sorted(ids)
        for t in records:
            row = next(e for e in t.evidence if e.kind == "table")
            assert docs[doc_id].text[row.start : row.end] == row.quote
            assert t.nct_ids[0] in row.quote.split(CELL_SEP) and "\n" not in row.quote
            assert t.phase is None or re.fullmatch(r"Phase [0-4][ab]?(?:/[1-4][ab]?)?", t.phase)


def test_collagen_table_columns() -> None:
    store, _docs = papers_store()
    t = store.trial(
        "NCT04467723"
    )  # I/II | Pirfenidone | Atezolizumab | Stage IV ... Non- Small Cell ... | Recruiting
    assert t.phase == "Phase 1/2" and t.status == "ongoing"
    assert t.interventions == ["pirfenidone", "atezolizumab"] and t.conditions == ["NSCLC"]
    assert "PD-L1" in t.targets
    up = store.trial("NCT06484153")
    assert up.phase == "Phase 1b/2" and up.status == "upcoming"  # "Not yet recruiting"
    assert up.interventions == ["pirfenidone", "fruquintinib", "pembrolizumab"]
    assert store.trial("NCT00243204").phase == "Phase 3"
    assert store.trial("NCT05607017").phase == "Phase 0"
    assert store.trial("NCT02195973").phase == "Phase 2b"
    assert store.trial("NCT00141297").status is None  # "Not certain" is no status


def test_row_spanning_inhibitor_is_carried_to_every_row_and_targets_come_from_mechanism() -> None:
    store, _docs = papers_store()
    records = [t for t in trials_of(store, STTT) if t.nct_ids and t.primary.kind == "table"]
    assert records and all(t.interventions for t in records)
    assert all(t.targets for t in records)
    withdrawn = store.trial("NCT05644626")
    assert withdrawn.status == "terminated" and withdrawn.phase == "Phase 1"
    assert store.trial("NCT02988960").interventions == ["ABBV-181"]
