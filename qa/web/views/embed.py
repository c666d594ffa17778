"""The embeddable widget (/embed) and the page with copy-paste snippets (/about/embed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from qa.api.deps import ServicesDep
from qa.api.present import hits_out
from qa.pipeline import clean_question
from qa.web.templating import page_url, render
from qa.web.views.ask import ConversationId, Question, answer_context

router = APIRouter(include_in_schema=False)


@router.get("/embed")
async def embed_page(
    request: Request,
    services: ServicesDep,
    q: Question = None,
    cid: ConversationId = None,
    topic: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """A compact ask box for an iframe; ``q`` presets a question, ``topic`` lists passages to start from."""
    context = await answer_context(services, request, q, cid)
    starters = []
    json_url = page_url("/", q=q, format="json") if q else None
    if topic and topic.strip():
        topic = clean_question(topic, services.settings.max_question_chars)
        starters = hits_out(services.index, services.retriever.search(topic, k=3), str(request.base_url))
        json_url = json_url or page_url("/api/search", q=topic, k=3)
    return render(
        request,
        "embed.html",
        {**context, "topic": topic, "starters": starters},
        json_url=json_url or "/api/documents",
    )


@router.get("/about/embed")
def embed_help(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return render(request, "embed_help.html", {"base": base}, json_url=None)
