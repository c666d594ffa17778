"""State-changing endpoints, behind the API key (X-API-Key) and disabled when QA_API_KEY is empty."""

from __future__ import annotations

import hmac
import logging
import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from qa.api.deps import ServicesDep
from qa.api.follow import serve_current
from qa.errors import Forbidden, QAError, ReloadConflict, Unauthorized
from qa.services import Services

log = logging.getLogger(__name__)
API_KEY_HEADER = "X-API-Key"


api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="The server's QA_API_KEY.", scheme_name="ApiKey"
)


def require_api_key(request: Request, x_api_key: Annotated[str | None, Depends(api_key_header)]) -> None:
    """403 when no key is configured (the endpoint is off), 401 when the request's key is missing or wrong."""
    expected: str = request.app.state.settings.api_key
    if not expected:
        raise Forbidden("state-changing endpoints are disabled on this server; set QA_API_KEY to enable them")
    given = x_api_key or ""
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
        raise Unauthorized(f"a valid {API_KEY_HEADER} header is required")


ApiKeyDep = Annotated[None, Depends(require_api_key)]

router = APIRouter(prefix="/api/admin", tags=["admin"])


class ReloadResponse(BaseModel):
    status: str = Field(description="'reloaded', or 'unchanged' when the current index is already served.")
    previous: str = Field(description="Build folder served before the call.")
    current: str = Field(description="Build folder served now.")
    documents: int
    passages: int
    built_at: str


@router.post("/reload", response_model=ReloadResponse)
def reload_index(request: Request, services: ServicesDep, _: ApiKeyDep) -> ReloadResponse:
    """Load the index now current on disk (after `qa index`) and swap it in without dropping a request.

    The new index is loaded and checked (manifest, checksums) beside the one serving; only then is the one
    reference the routes read swapped. On any failure the previous index keeps serving. Each server process
    also picks up a new build by itself (``QA_INDEX_POLL_SECONDS``); this one reports 'unchanged' when it
    already did.
    """
    lock: threading.Lock = request.app.state.reload_lock
    if not lock.acquire(timeout=services.settings.change_wait_seconds):
        raise ReloadConflict("a reload is already running")
    try:
        try:
            previous, serving = serve_current(request.app)
        except QAError as exc:
            raise ReloadConflict(
                f"kept the previous index: {exc.message}", detail={"code": exc.code, "detail": exc.detail}
            ) from exc
        if serving.index.path == previous:
            return _reply("unchanged", previous, serving)
        log.info("reloaded the index: %s -> %s", previous.name, serving.index.path.name)
        return _reply("reloaded", previous, serving)
    finally:
        lock.release()


def _reply(status: str, previous: Path, serving: Services) -> ReloadResponse:
    m = serving.index.manifest
    return ReloadResponse(
        status=status,
        previous=previous.name,
        current=serving.index.path.name,
        documents=m.documents,
        passages=m.passages,
        built_at=m.built_at,
    )


def install_admin(app: FastAPI) -> None:
    app.state.reload_lock = threading.Lock()
    app.include_router(router)
