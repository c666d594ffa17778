"""GET /api/search: ranked passages for a query, without answer extraction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from qa.api.deps import DocumentsDep, ServicesDep
from qa.api.models import SearchResponse
from qa.api.present import hits_out
from qa.pipeline import clean_question
from qa.settings import MAX_QUESTION_CHARS

router = APIRouter(prefix="/api", tags=["search"])


@router.get("/search", response_model=SearchResponse)
async def search_route(
    request: Request,
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, description="The query.")],
    documents: DocumentsDep,
    k: Annotated[int, Query(ge=1, le=50, description="How many passages.")] = 10,
) -> SearchResponse:
    """Hybrid (dense + BM25) search over passages (of the ``documents`` given, when given)."""
    query = clean_question(q, services.settings.max_question_chars)
    vector = await services.encode_query(query)
    hits = services.retriever.search(query, k=k, query_vector=vector, documents=documents)
    return SearchResponse(query=query, passages=hits_out(services.index, hits, str(request.base_url)))
