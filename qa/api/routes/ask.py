"""POST /api/ask: the cited answer, with follow-ups read against the conversation."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from qa.api.deps import ServicesDep, get_services
from qa.api.models import AskRequest, AskResponse
from qa.api.present import ask_response
from qa.api.timing import ServerTimingDep, server_timing
from qa.ask import ask_async


class _AskRoute(APIRoute):
    """The route, declared as usual (OpenAPI, routing, errors), with a shorter path for a well-formed JSON
    question: the body is validated straight from its bytes and the two dependencies called directly,
    skipping FastAPI's generic body parsing and dependency solving (~0.1 ms of a request in-process).
    Anything else (another content type, invalid JSON, a field out of range) goes through FastAPI's own
    handler, so errors are exactly FastAPI's, in the app's one error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        generic = super().get_route_handler()

        async def handler(request: Request) -> Response:
            media_type = request.headers.get("content-type", "").partition(";")[0]
            if media_type.strip().lower() != "application/json":
                return await generic(request)
            try:
                body = AskRequest.model_validate_json(await request.body())
            except ValidationError:
                return await generic(request)  # the body is cached on the request: read once
            services = await get_services(request)
            return await ask_route(body, request, services, await server_timing(request))

        return handler


router = APIRouter(prefix="/api", tags=["answers"], route_class=_AskRoute)


@router.post("/ask", response_model=AskResponse)
async def ask_route(
    body: AskRequest, request: Request, services: ServicesDep, timing: ServerTimingDep
) -> Response:
    """Answer a question from the indexed documents, citing the sentences it rests on."""
    # On the event loop: the pipeline is a fraction of a millisecond of Python around an awaited forward
    # pass, so a thread per request would only add hand-offs and contention for the GIL.
    result = await ask_async(services, body.question, conversation_id=body.conversation_id, top_k=body.top_k)
    for stage, ms in result.timings.items():
        timing.add(stage, ms / 1000)
    response = ask_response(services.index, result, str(request.base_url))
    # Already a validated AskResponse: serialize it once rather than have FastAPI dump and re-validate it.
    return Response(response.model_dump_json(), media_type="application/json")
