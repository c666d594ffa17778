"""Reusable dependencies: the loaded services (or a clear 503 while they are not ready) and trial filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from qa.api.models import MAX_DOCUMENT_FILTER
from qa.errors import IndexMissing
from qa.services import Services


async def get_services(request: Request) -> Services:
    """(async only so that FastAPI calls it on the event loop instead of handing it to a thread)"""
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise IndexMissing("the index is not loaded yet; try again shortly")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


Filter = Annotated[str | None, Query(max_length=200)]
FILTER_NAMES = (
    "drug",
    "drug_class",
    "target",
    "condition",
    "phase",
    "q",
    "outcome",
    "designation",
    "setting",
    "biomarker",
    "status",
)


class TrialFilters:
    """The trial filters of GET /api/trials and the /trials page, declared once; blank values mean unset."""

    def __init__(
        self,
        drug: Filter = None,
        drug_class: Filter = None,
        target: Filter = None,
        condition: Filter = None,
        phase: Annotated[str | None, Query(max_length=20)] = None,
        q: Annotated[
            str | None, Query(max_length=500, description="A question; parsed into the same filters.")
        ] = None,
        outcome: Annotated[
            str | None, Query(max_length=200, description="A measure reported: ORR, OS, CR ...")
        ] = None,
        designation: Annotated[
            str | None,
            Query(max_length=200, description="A regulatory designation: Fast Track, Orphan Drug ..."),
        ] = None,
        setting: Annotated[
            str | None, Query(max_length=200, description="first-line, neoadjuvant, previously treated ...")
        ] = None,
        biomarker: Annotated[
            str | None,
            Query(max_length=200, description="A biomarker selection: 'PD-L1 >= 50%', 'PD-L1-positive'"),
        ] = None,
        status: Annotated[
            str | None, Query(max_length=200, description="ongoing, completed, terminated ...")
        ] = None,
    ) -> None:
        values = (
            drug,
            drug_class,
            target,
            condition,
            phase,
            q,
            outcome,
            designation,
            setting,
            biomarker,
            status,
        )
        given = dict(zip(FILTER_NAMES, values, strict=True))
        self.values: dict[str, str | None] = {k: (v.strip() if v else None) or None for k, v in given.items()}

    def args(self) -> list[str | None]:
        """The values in FILTER_NAMES order (the order build_query takes them)."""
        return [self.values[k] for k in FILTER_NAMES]


TrialFiltersDep = Annotated[TrialFilters, Depends()]


async def document_filter(
    services: ServicesDep,
    documents: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_DOCUMENT_FILTER,
            description="Only these documents (ids from GET /api/documents): repeat the parameter and/or "
            "separate ids with commas. Unknown ids get a 404 naming them.",
        ),
    ] = None,
) -> tuple[str, ...] | None:
    """The checked document filter of a GET endpoint; None (or empty) when it names no document."""
    return services.index.check_documents(documents) or None


DocumentsDep = Annotated[tuple[str, ...] | None, Depends(document_filter)]
