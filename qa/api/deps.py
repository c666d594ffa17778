"""Reusable dependencies: the loaded services, or a clear 503 while they are not ready."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from qa.errors import IndexMissing
from qa.services import Services


def get_services(request: Request) -> Services:
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise IndexMissing("the index is not loaded yet; try again shortly")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
