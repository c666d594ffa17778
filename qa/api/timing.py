"""Server-Timing: routes record named durations on the request; the middleware sends them as one header.

In a route::

    from qa.api.timing import ServerTimingDep

    @router.post("/api/ask")
    def ask(body: AskRequest, services: ServicesDep, timing: ServerTimingDep) -> AskResponse:
        with timing.measure("retrieval"):
            hits = services.retriever.search(...)
        with timing.measure("facts"):
            ...
        with timing.measure("answer"):
            ...

and the response carries ``Server-Timing: retrieval;dur=12.3, facts;dur=0.8, answer;dur=4.1, app;dur=17.9``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

STATE_KEY = "server_timing"
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


@dataclass(frozen=True)
class TimingEntry:
    name: str
    seconds: float
    description: str | None = None

    def header_value(self) -> str:
        value = f"{self.name};dur={self.seconds * 1000:.1f}"
        if self.description:
            escaped = self.description.replace("\\", "\\\\").replace('"', '\\"')
            value += f';desc="{escaped}"'
        return value


@dataclass
class ServerTiming:
    """Named durations of one request, in the order they were recorded."""

    entries: list[TimingEntry] = field(default_factory=list)

    def add(self, name: str, seconds: float, description: str | None = None) -> None:
        if not _TOKEN.match(name):
            raise ValueError(f"Server-Timing names are HTTP tokens, not {name!r}")
        self.entries.append(TimingEntry(name, max(seconds, 0.0), description))

    @contextmanager
    def measure(self, name: str, description: str | None = None) -> Iterator[None]:
        """Time the block and record it under ``name`` (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started, description)

    def header(self, total_seconds: float | None = None) -> str:
        parts = [e.header_value() for e in self.entries]
        if total_seconds is not None:
            parts.append(TimingEntry("app", total_seconds).header_value())
        return ", ".join(parts)


async def server_timing(request: Request) -> ServerTiming:
    """The request's recorder (created by the middleware; created here when the middleware is absent).

    async so that FastAPI runs it on the event loop rather than in a worker thread."""
    recorder = getattr(request.state, STATE_KEY, None)
    if recorder is None:
        recorder = ServerTiming()
        setattr(request.state, STATE_KEY, recorder)
    return recorder


ServerTimingDep = Annotated[ServerTiming, Depends(server_timing)]
