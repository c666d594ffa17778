"""Trial tables: a table with a registry-id column becomes one trial record per id, from its row's cells.

Readers of structured formats write a table row as "cell | cell | ..." (the JATS reader does, carrying
row-spanning cells down). The registry-id column is the one whose cells are registry ids; the other columns
are recognised by their header words (phase, status, drug/agent/intervention, combination, target,
mechanism, cancer/condition/indication). The row is the record's quote. OCR'd table text, which has no cell
structure, never gets here (qa/facts/ocr.py only reconciles it with the body text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.documents import Document
from qa.facts.extract import PassageFinder, derive
from qa.facts.model import Evidence, Trial
from qa.facts.phases import normalize_phase
from qa.facts.registry import find_registry_ids
from qa.facts.vocab import Vocabulary

CELL_SEP = " | "
# header words -> field; the first column a header matches wins, in this order
_HEADERS: list[tuple[str, re.Pattern[str]]] = [
    ("phase", re.compile(r"\bphase", re.I)),
    ("status", re.compile(r"\bstatus|\brecruitment|\bresults?\b", re.I)),
    ("combination", re.compile(r"\bcombin|\bpartner|\bbackbone", re.I)),
    (
        "agent",
        re.compile(
            r"\bdrugs?\b|\bagents?\b|\binterventions?\b|\binhibitors?\b|\btreatments?\b|\btherap|"
            r"\bvaccines?\b|\bantibod|\bproducts?\b|\bregimens?\b|\bcompounds?\b",
            re.I,
        ),
    ),
    ("target", re.compile(r"\btargets?\b", re.I)),
    ("mechanism", re.compile(r"\bmechanism", re.I)),
    (
        "condition",
        re.compile(
            r"\bcancers?\b|\bconditions?\b|\bdiseases?\b|\bindications?\b|\btumou?r|"
            r"\bpopulation|\bmalignan",
            re.I,
        ),
    ),
]
# ClinicalTrials.gov's overall-status values, as tables copy them
_STATUSES = [
    (re.compile(r"not\s+yet\s+recruiting", re.I), "upcoming"),
    (re.compile(r"active|recruiting|enrolling|ongoing", re.I), "ongoing"),
    (re.compile(r"completed", re.I), "completed"),
    (re.compile(r"terminated|withdr[ae]wn?|suspended|discontinued", re.I), "terminated"),
]
_NONE = re.compile(r"^\s*(?:none|n/?a|-|–|—|not\s+applicable|no)\s*$", re.I)
_ITEMS = re.compile(r"\s*(?:,|;|\+|\band\b|/)\s*")


def _rows(doc: Document, start: int, end: int) -> list[tuple[int, int, list[str]]]:
    out = []
    for m in re.finditer(r"[^\n]+", doc.text[start:end]):
        line = m.group(0)
        out.append((start + m.start(), start + m.end(), [c.strip() for c in line.split(CELL_SEP)]))
    return out


def _columns(header: list[str]) -> dict[str, int]:
    cols: dict[str, int] = {}
    for i, cell in enumerate(header):
        for name, rx in _HEADERS:
            if rx.search(cell) and name not in cols:
                cols[name] = i
                break
    return cols


def _id_column(rows: list[list[str]], width: int) -> int | None:
    """The column whose cells are registry ids (in at least half of the rows)."""
    for i in range(width):
        hits = sum(1 for cells in rows if len(cells) == width and find_registry_ids(cells[i]))
        if rows and hits * 2 >= len(rows):
            return i
    return None


def _phase(cell: str) -> str | None:
    if re.fullmatch(r"(?:(?:early\s+)?phase\s*)?0", cell.strip(), re.I):
        return "Phase 0"
    cell = re.sub(r"(?<=[IV1-4])([AB])\b", lambda m: m.group(1).lower(), cell.strip())  # "IB/II" -> "Ib/II"
    return normalize_phase(cell if re.search(r"phase", cell, re.I) else f"phase {cell}")


def _status(cell: str) -> str | None:
    return next((label for rx, label in _STATUSES if rx.search(cell)), None)


def _tidy(cell: str) -> str:
    return re.sub(r"(\w)-\s+(\w)", r"\1-\2", re.sub(r"\s+", " ", cell)).strip()


def _names(vocab: Vocabulary, cell: str, kind: str) -> list[str]:
    """The canonical names a cell holds (vocabulary names, else the cell's own items)."""
    if not cell or _NONE.match(cell):
        return []
    out: list[str] = []
    for item in _ITEMS.split(_tidy(cell)) if kind == "drug" else [_tidy(cell)]:
        found = [
            m.name for m in vocab.find(item) if m.kind in ((kind, "class") if kind == "drug" else (kind,))
        ]
        for name in found or ([item] if item else []):
            if name not in out:
                out.append(name)
    return out


def _row_trial(
    vocab: Vocabulary,
    doc: Document,
    finder: PassageFinder,
    row: tuple[int, int, list[str]],
    nct: str,
    cols: dict[str, int],
    header: str,
) -> Trial:
    start, end, cells = row
    cell = {name: cells[i] for name, i in cols.items()}
    ncts = [nct] if nct.startswith("NCT") else []
    trial = Trial(id=nct, nct_ids=ncts, registry_ids=[] if ncts else [nct])
    trial.phase = _phase(cell["phase"]) if "phase" in cell else None
    trial.status = _status(cell["status"]) if "status" in cell else None
    trial.interventions = _names(vocab, cell.get("agent", ""), "drug")
    trial.interventions += [
        x for x in _names(vocab, cell.get("combination", ""), "drug") if x not in trial.interventions
    ]
    trial.conditions = _names(vocab, cell.get("condition", ""), "condition")
    stated = [
        m.name for key in ("target", "mechanism") for m in vocab.find(cell.get(key, "")) if m.kind == "target"
    ]
    derive(vocab, trial, list(dict.fromkeys(stated)))
    quote = doc.text[start:end]
    trial.evidence.append(
        Evidence(finder.find(doc.id, start, end), doc.id, quote, start, end, [], "table", "mention", header)
    )
    return trial


def _fill(into: Trial, row: Trial) -> None:
    """A trial the body text names gains what its table row adds."""
    for name in ("phase", "status"):
        if getattr(into, name) is None:
            setattr(into, name, getattr(row, name))
    for name in ("interventions", "conditions", "targets", "drug_classes"):
        mine: list[str] = getattr(into, name)
        if not mine:
            mine.extend(getattr(row, name))
    if not any(e.start == row.primary.start and e.doc_id == row.primary.doc_id for e in into.evidence):
        into.evidence.append(row.primary)


def table_trials(
    vocab: Vocabulary, documents: Sequence[Document], finder: PassageFinder, known: list[Trial]
) -> list[Trial]:
    """New trial records from the trial tables of ``documents``; rows of known trials enrich those instead."""
    by_id = {i: t for t in known for i in [*t.nct_ids, *t.registry_ids]}
    out: list[Trial] = []
    for doc in documents:
        for block in doc.blocks:
            if block.kind != "table":
                continue
            rows = _rows(doc, block.start, block.end)
            if len(rows) < 2 or len(rows[0][2]) < 2:
                continue
            header = rows[0][2]
            width = len(header)
            id_col = _id_column([r[2] for r in rows[1:]], width)
            if id_col is None:
                continue
            cols = _columns([c if i != id_col else "" for i, c in enumerate(header)])
            for row in rows[1:]:
                if len(row[2]) != width:
                    continue  # an empty cell was dropped: the columns cannot be told apart
                for rid in find_registry_ids(row[2][id_col]):
                    trial = _row_trial(vocab, doc, finder, row, rid.value, cols, CELL_SEP.join(header))
                    if rid.value in by_id:
                        _fill(by_id[rid.value], trial)
                    else:
                        by_id[rid.value] = trial
                        out.append(trial)
    return out
