"""The trials page: every extracted trial, filtered exactly like GET /api/trials."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from qa.api.deps import ServicesDep, TrialFiltersDep
from qa.api.models import TrialOut
from qa.api.present import trial_out
from qa.api.routes.facts import PAGE, build_query
from qa.errors import QAError
from qa.web.templating import page_url, render

router = APIRouter(include_in_schema=False)


@router.get("/trials")
def trials_page(request: Request, services: ServicesDep, trial_filters: TrialFiltersDep) -> Response:
    filters = trial_filters.values
    trials: list[TrialOut] = []
    total = 0
    error = None
    store = services.facts
    try:
        if store is None:
            raise QAError("the index has no fact store; rebuild it with `qa index`")
        query = build_query(store, *trial_filters.args())
        total, page = store.page_trials(query, limit=PAGE)
        trials = [trial_out(t) for t in page]
    except QAError as exc:
        error = exc.message
    return render(
        request,
        "trials.html",
        {
            "trials": trials,
            "total": total,
            "filters": filters,
            "error": error,
            "csv_url": page_url("/api/trials", **filters, format="csv"),
        },
        json_url=page_url("/api/trials", **filters),
        status_code=400 if error else 200,
    )
