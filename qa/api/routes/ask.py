"""POST /api/ask: the cited answer, with follow-ups read against the conversation."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from qa.api.deps import ServicesDep
from qa.api.models import AskRequest, AskResponse
from qa.api.present import ask_response
from qa.api.timing import ServerTimingDep
from qa.pipeline import ask

router = APIRouter(prefix="/api", tags=["answers"])


@router.post("/ask", response_model=AskResponse)
async def ask_route(
    body: AskRequest, request: Request, services: ServicesDep, timing: ServerTimingDep
) -> Response:
    """Answer a question from the indexed documents, citing the sentences it rests on."""
    # On the event loop: the pipeline is a fraction of a millisecond of Python around an awaited forward
    # pass, so a thread per request would only add hand-offs and contention for the GIL.
    result = await ask(
        services,
        body.question,
        conversation_id=body.conversation_id,
        top_k=body.top_k,
        documents=body.documents,
    )
    for stage, ms in result.timings.items():
        timing.add(stage, ms / 1000)
    response = ask_response(services.index, result, str(request.base_url))
    # Already a validated AskResponse: serialize it once rather than have FastAPI dump and re-validate it.
    return Response(response.model_dump_json(), media_type="application/json")
