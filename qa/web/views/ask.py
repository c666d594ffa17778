"""The Ask page (/): a question box; /?q=… answers on the server, follow-ups carry the conversation id."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from qa.api.deps import ServicesDep
from qa.api.models import MAX_DOCUMENT_FILTER, AskResponse
from qa.api.present import ask_response, document_summary
from qa.errors import BadInput, NotFound, UnknownDocument
from qa.pipeline import ask
from qa.services import Services
from qa.settings import MAX_QUESTION_CHARS
from qa.web.downloads import trial_downloads
from qa.web.segments import passage_segments
from qa.web.templating import page_url, render

router = APIRouter(include_in_schema=False)

EXAMPLES = [
    "Which trials combine TLR9 agonists with pembrolizumab?",
    "Which trials evaluate LAG-3 or TIGIT antibodies in NSCLC?",
    "How do nanoparticles help overcome resistance to immunotherapy?",
    "What is the response rate of SD-101 with pembrolizumab in melanoma?",
]
Question = Annotated[str | None, Query(max_length=MAX_QUESTION_CHARS)]
ConversationId = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")]
# The document filter: checkboxes (one value each, plus an empty value that says the form was sent, so that
# clearing every box lifts the filter) or a permalink's comma-separated ids.
Documents = Annotated[list[str] | None, Query(max_length=MAX_DOCUMENT_FILTER + 1)]


def documents_param(documents: list[str] | None) -> str | None:
    """A document filter as one query value (ids joined by commas), for permalinks; None when unset."""
    return ",".join(documents) if documents else None


async def answer_question(
    services: Services, request: Request, q: str, cid: str | None, documents: list[str] | None = None
) -> tuple[AskResponse, list[str], str | None]:
    """The answer, the questions asked before it in the conversation, and a notice for the reader."""
    notice = None
    earlier: list[str] = []
    if cid:
        try:
            earlier = [t.question for t in await services.conversations.history_async(cid)]
        except NotFound:
            cid, notice = None, "That conversation has expired, so this question starts a new one."
    result = await ask(services, q, conversation_id=cid or None, documents=documents)
    return ask_response(services.index, result, str(request.base_url)), earlier, notice


async def answer_context(
    services: Services,
    request: Request,
    q: str | None,
    cid: str | None,
    documents: list[str] | None = None,
) -> dict[str, object]:
    """What the ask page and the widget render: the answer (or the error), cards and downloads."""
    if not q:
        return {"answer": None, "question": ""}
    try:
        answer, earlier, notice = await answer_question(services, request, q, cid, documents)
    except (BadInput, UnknownDocument) as exc:
        return {"answer": None, "question": q, "error": exc.message}
    return {
        "answer": answer,
        "question": q,
        "earlier": earlier,
        "notice": notice,
        "segments": {p.id: passage_segments(p) for p in answer.passages},
        "downloads": trial_downloads(answer.trials),
        "answer_permalink": page_url(
            "/", q=answer.resolved_question, documents=documents_param(answer.reading.documents)
        ),
    }


@router.get("/", response_model=None)
async def ask_page(
    request: Request,
    services: ServicesDep,
    q: Question = None,
    cid: ConversationId = None,
    documents: Documents = None,
    format: Literal["html", "json"] = "html",
) -> Response:
    """The ask page; ``format=json`` returns the same AskResponse as POST /api/ask. ``documents`` (ids,
    repeated or comma-separated) restricts the answer to those documents, like POST /api/ask's."""
    context = await answer_context(services, request, q, cid, documents)
    answer = context["answer"]
    if format == "json":
        if isinstance(answer, AskResponse):
            return Response(answer.model_dump_json(), media_type="application/json")
        raise BadInput(str(context.get("error") or "q is required for format=json"))
    if isinstance(answer, AskResponse):
        scope = answer.reading.documents
        json_url = page_url("/", q=answer.resolved_question, documents=documents_param(scope), format="json")
    else:
        scope = [d for d in documents or [] if d in services.index.documents]
        json_url = "/api/documents"
    summaries = [document_summary(services.index, d) for d in services.index.documents.metas.values()]
    return render(
        request,
        "ask.html",
        {
            **context,
            "examples": EXAMPLES,
            "documents": summaries,
            "selected_documents": scope or [],
            "doc_titles": {d.id: d.title or d.id for d in summaries},
        },
        json_url=json_url,
        status_code=400 if context.get("error") else 200,
    )
