"""Structured facts: trials (JSON or CSV) and drugs, filtered by drug, class, target, condition, phase or question."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from qa.api.deps import DocumentsDep, ServicesDep, TrialFiltersDep
from qa.api.models import EvidenceOut, TrialOut
from qa.api.present import trial_out
from qa.errors import BadInput, IndexMissing
from qa.facts.biomarkers import find_biomarkers
from qa.facts.phases import phase_numbers
from qa.facts.query import TrialQuery, parse_question
from qa.facts.store import FactStore
from qa.services import Services

router = APIRouter(prefix="/api", tags=["facts"])
Key = Annotated[str, Path(min_length=1, max_length=200)]
PAGE = 1000  # trials per page of GET /api/trials unless ``limit`` says otherwise
PAGE_MAX = 10_000


class TrialList(BaseModel):
    count: int = Field(description="How many trials meet the filters (all pages).")
    offset: int = 0
    limit: int = PAGE
    trials: list[TrialOut] = Field(description="This page of them, in document order.")


class DrugOut(BaseModel):
    name: str
    aliases: list[str]
    classes: list[str]
    targets: list[str]
    trials: list[str] = Field(description="Ids of the trials whose interventions include the drug.")
    designations: list[str]
    source: str = Field(description="vocabulary, or learned from the documents")
    mentions: int
    evidence: list[EvidenceOut]
    learned: list[dict[str, Any]] = Field(description="What the documents state about the drug, with quotes.")


class DrugSummary(BaseModel):
    name: str
    aliases: list[str]
    classes: list[str]
    targets: list[str]
    trials: list[str]
    mentions: int


def _store(services: Services) -> FactStore:
    store = services.facts
    if store is None:
        raise IndexMissing("the index has no fact store; rebuild it with `qa index`")
    return store


def _resolve(store: FactStore, kind: str, value: str | None) -> str | None:
    if value is None:
        return None
    found = store.vocab.resolve(value, kind)
    if found is None:
        raise BadInput(f"unknown {kind.replace('class', 'drug class')} '{value}'")
    return found


def build_query(
    store: FactStore,
    drug: str | None,
    drug_class: str | None,
    target: str | None,
    condition: str | None,
    phase: str | None,
    q: str | None,
    outcome: str | None = None,
    designation: str | None = None,
    setting: str | None = None,
    biomarker: str | None = None,
    status: str | None = None,
) -> TrialQuery:
    query = (parse_question(store.vocab, q, store) or TrialQuery()) if q else TrialQuery()
    for kind, value in (("drug", drug), ("class", drug_class), ("target", target)):
        name = _resolve(store, kind, value)
        if name:
            query.groups.append([(kind, name)])
    cond = _resolve(store, "condition", condition)
    if cond:
        query.conditions.append(cond)
    if phase:
        from qa.facts.phases import normalize_phase

        numbers = phase_numbers(normalize_phase(phase if "phase" in phase.lower() else f"phase {phase}"))
        if not numbers:
            raise BadInput(f"unknown phase '{phase}' (try 2, II, 1/2 or 'phase III')")
        query.phases |= numbers
    for kind, value, into in (
        ("outcome", outcome, query.outcomes),
        ("designation", designation, query.designations),
        ("setting", setting, query.settings),
        ("status", status, query.statuses),
    ):
        name = _resolve(store, kind, value)
        if name and name not in into:
            into.append(name)
    if biomarker:
        labels = find_biomarkers(biomarker, store.vocab.find(biomarker), 0, len(biomarker))
        if not labels:
            raise BadInput(f"unknown biomarker '{biomarker}' (try 'PD-L1 >= 50%' or 'PD-L1-positive')")
        query.biomarkers.extend(x for x in labels if x not in query.biomarkers)
    return query


def _csv(trials: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    columns = [
        "id",
        "name",
        "nct_ids",
        "phase",
        "interventions",
        "drug_classes",
        "targets",
        "conditions",
        "setting",
    ]
    columns += [
        "status",
        "designations",
        "biomarkers",
        "outcomes",
        "doc_id",
        "passage_id",
        "start",
        "end",
        "quote",
    ]
    writer = csv.writer(buf)
    writer.writerow(columns)
    for t in trials:
        row = []
        for c in columns:
            v = t[c]
            if c == "outcomes":
                v = "; ".join(
                    f"{o['measure']} {o['value']}" + (f" ({o['detail']})" if o["detail"] else "") for o in v
                )
            elif isinstance(v, list):
                v = "; ".join(str(x) for x in v)
            row.append("" if v is None else v)
        writer.writerow(row)
    return buf.getvalue()


@router.get("/trials", response_model=TrialList, responses={200: {"content": {"text/csv": {}}}})
def list_trials(
    services: ServicesDep,
    filters: TrialFiltersDep,
    documents: DocumentsDep,
    format: Literal["json", "csv"] = "json",
    offset: Annotated[int, Query(ge=0, description="Trials to skip (pages: offset + limit).")] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="Trials in this page at most.")] = PAGE,
) -> Any:
    """Trials and studies the documents describe, a page at a time; every filter given must hold. With
    ``documents``, the trials those documents describe, quoted from them. ``count`` is the number over all
    pages (in CSV, the ``X-Total-Count`` header)."""
    store = _store(services)
    query = build_query(store, *filters.args())
    count, page = store.page_trials(query, documents=documents, offset=offset, limit=limit)
    trials = [t.to_dict() for t in page]
    if format == "csv":
        return Response(
            _csv(trials),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="trials.csv"', "X-Total-Count": str(count)},
        )
    return TrialList(
        count=count, offset=offset, limit=limit, trials=[TrialOut.model_validate(t) for t in trials]
    )


@router.get("/trials/{trial_id}", response_model=TrialOut)
def get_trial(trial_id: Key, services: ServicesDep) -> TrialOut:
    """One trial by id, NCT id or name (e.g. NCT02983045 or PIVOT-02)."""
    return trial_out(_store(services).trial(trial_id))


@router.get("/drugs", response_model=list[DrugSummary])
def list_drugs(services: ServicesDep) -> list[DrugSummary]:
    """Drugs the documents mention, with their classes, targets and trials."""
    return [DrugSummary.model_validate(d.to_dict()) for d in _store(services).drugs()]


@router.get("/drugs/{name}", response_model=DrugOut)
def get_drug(name: Key, services: ServicesDep) -> DrugOut:
    """A drug by any name (INN, code name or brand): aliases, classes, targets and the trials it appears in."""
    return DrugOut.model_validate(_store(services).drug(name).to_dict())
