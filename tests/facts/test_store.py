"""The fact store on disk: a query reads only the rows its terms allow, and finds what a scan of every trial
finds (for every question of the test data and one filter per value the trials hold, over the seed build and
over every shared paper); rows are read by id, and a file that is not a fact store is a clear error."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from facts.papers_store import papers_store

from qa.errors import IndexCorrupt, NotFound
from qa.facts import FACTS_FILE, FactStore, Trial, TrialQuery, parse_question
from qa.facts.postings import query_needs
from qa.facts.query import constraints, matches
from qa.services import Services

DATA = Path(__file__).resolve().parents[1] / "data"


def _questions() -> list[str]:
    out = []
    for f in sorted(DATA.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            turns = row.get("turns") if isinstance(row.get("turns"), list) else []
            out += [x for x in [row.get("question"), *turns] if isinstance(x, str)]
    return list(dict.fromkeys(out))


def _single_filters(trials: list[Trial]) -> list[TrialQuery]:
    """One query per value some trial holds, of every kind a filter takes."""
    out: list[TrialQuery] = []
    for t in trials:
        out += [TrialQuery(groups=[[("drug", d)]]) for d in t.interventions]
        out += [TrialQuery(groups=[[("class", c)]]) for c in t.drug_classes]
        out += [TrialQuery(groups=[[("target", x)]], axis=True) for x in t.targets]
        out += [TrialQuery(conditions=[c]) for c in t.conditions]
        out += [TrialQuery(settings=[s]) for s in t.setting]
        out += [TrialQuery(statuses=[t.status])] if t.status else []
        out += [TrialQuery(outcomes=[o.measure]) for o in t.outcomes]
        out += [TrialQuery(designations=[d.split(" ")[-1]]) for d in t.designations]
        out += [TrialQuery(biomarkers=[b]) for b in t.biomarkers]
    out += [TrialQuery(phases={n}) for n in (1, 2, 3)]
    out += [TrialQuery(settings=["previously treated"]), TrialQuery(settings=["resistant"])]
    return out


def _stores(services: Services) -> list[FactStore]:
    assert services.facts is not None
    return [services.facts, papers_store()[0]]


def test_queries_find_what_a_scan_of_every_trial_finds(services: Services) -> None:
    checked = 0
    for store in _stores(services):
        every = list(store.trials)
        sources = {t.id: {e.doc_id for e in t.evidence} for t in every}
        docs = sorted({e.doc_id for t in every for e in t.evidence})
        queries = [q for q in (parse_question(store.vocab, x, store) for x in _questions()) if q is not None]
        queries += _single_filters(every)
        assert len(queries) > 100
        scopes = [docs[::2], docs[:2], docs[-1:]]  # scopes narrowed first, or skipped as cheaper to check
        for query in queries:
            scan = [t.id for t in every if matches(store.vocab, t, query)]
            assert [t.id for t in store.filter_trials(query)] == scan, query
            parts = constraints(query)
            met = [(sum(matches(store.vocab, t, p) for p in parts), i, t.id) for i, t in enumerate(every)]
            near = [tid for m, _i, tid in sorted(met, key=lambda x: (-x[0], x[1])) if 0 < m < len(parts)]
            assert [t.id for t in store.nearest_trials(query, k=5)] == (near[:5] if len(parts) > 1 else [])
            for mine in map(set, scopes):
                found = store.filter_trials(query, documents=mine)
                assert [t.id for t in found] == [tid for tid in scan if sources[tid] & mine], (query, mine)
                got = [t.id for t in store.nearest_trials(query, k=5, documents=mine)]
                near_mine = [tid for tid in near if sources[tid] & mine][:5]
                assert got == (near_mine if len(parts) > 1 else []), (query, mine)
            checked += 1
    assert checked > 400


def test_a_query_reads_only_the_rows_its_terms_allow(services: Services) -> None:
    store = services.facts
    assert store is not None
    query = parse_question(store.vocab, "Which trials combine TLR9 agonists with pembrolizumab?", store)
    assert query is not None
    rows = list(store._candidates(query_needs(store.vocab, query)))
    found = store.filter_trials(query)
    assert len(found) >= 3 and len(found) <= len(rows) < len(store.trials) / 4
    assert list(store._candidates(query_needs(store.vocab, TrialQuery()))) == list(range(len(store.trials)))


def test_lookups_read_by_id(services: Services) -> None:
    store = services.facts
    assert store is not None
    pivot = store.trial("pivot02")
    assert pivot == store.trial("NCT02983045") == store.trial("PIVOT-02") == store.trial(pivot.id)
    assert store.named_trials("What did PIVOT-02 (NCT02983045) report?") == [pivot.id]
    with pytest.raises(NotFound, match="no trial"):
        store.trial("NOT-A-TRIAL-9")
    names = [d.name for d in store.drugs()]
    assert names and "pembrolizumab" in names and len(names) == len(store.drug_names)
    assert store.drug("Keytruda").name == "pembrolizumab"


def test_a_file_that_is_not_a_fact_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / FACTS_FILE).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(IndexCorrupt, match="not a readable fact store"):
        FactStore(tmp_path / FACTS_FILE)
    db = sqlite3.connect(tmp_path / "other.sqlite3")
    db.execute("CREATE TABLE passages (row INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(IndexCorrupt, match="not a readable fact store"):
        FactStore(tmp_path / "other.sqlite3")


_FILE_FACTS = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from readers.paperset import PDF_PAPERS, XML_PAPERS, word_count
from qa.chunking import chunk_document
from qa.corpus import load_document
from qa.facts import Vocabulary, build_facts
files = [*sorted(Path(sys.argv[4]).glob("*.txt")), *sorted(Path(sys.argv[2]).glob("*.txt")), *XML_PAPERS, *PDF_PAPERS]
docs = [load_document(p, p.parent, None, 20_000_000) for p in files]
passages = [p for d in docs for p in chunk_document(d, word_count, max_tokens=200, overlap=1)]
build_facts(docs, passages, Vocabulary.load(), Path(sys.argv[3]))
"""


def test_a_fact_store_is_the_same_file_whatever_the_string_hashes(tmp_path: Path) -> None:
    """Two processes with other string hashes (so other set orders) file the facts of the seed corpus, every
    shared paper and a few notes that name drugs in no trial into the same bytes: a rebuild changes no row,
    not even the order of the documents' (those of the notes are met through the drugs' evidence)."""
    import os
    import subprocess
    import sys

    from conftest import CORPUS, ROOT
    from readers.paperset import require_papers

    require_papers()
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(5):
        (notes / f"note{i}.txt").write_text(
            f"Note {i}.\n\nPembrolizumab and nivolumab block PD-1 on T cells.\n"
        )
    out = []
    for seed in ("1", "2"):
        path = tmp_path / f"facts-{seed}.sqlite3"
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-c", _FILE_FACTS, str(ROOT / "tests"), str(CORPUS), str(path), str(notes)],
            env=env,
            check=True,
        )
        out.append(path.read_bytes())
    assert out[0] == out[1] and len(out[0]) > 100_000
