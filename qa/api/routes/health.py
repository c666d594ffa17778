"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from qa.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Ready only when the model and index are loaded."""
    m = services.index.manifest
    return {"status": "ready", "passages": m.passages, "documents": m.documents, "built_at": m.built_at}
