"""Per-request id, timing log line, Server-Timing header and Prometheus metrics (GET /metrics)."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.timing import STATE_KEY, ServerTiming
from qa.logging_setup import request_id_var

REQUEST_ID_HEADER = "x-request-id"
UNMATCHED = "<unmatched>"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

access_log = logging.getLogger("qa.access")


class Metrics:
    """The app's own registry (not the process-global one, so several apps can live in one process)."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "qa_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = self._histogram(
            "qa_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
        )
        self.stages = self._histogram(
            "qa_stage_duration_seconds",
            "Durations reported through Server-Timing (e.g. retrieval, facts, answer of /api/ask).",
            ["route", "stage"],
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._stages: dict[tuple[str, str], Any] = {}
        Gauge("qa_index_passages", "Passages in the loaded index.", registry=self.registry).set_function(
            lambda: _manifest_value(app, "passages")
        )
        Gauge("qa_index_documents", "Documents in the loaded index.", registry=self.registry).set_function(
            lambda: _manifest_value(app, "documents")
        )
        Gauge(
            "qa_model_load_seconds", "Seconds the embedding model took to load.", registry=self.registry
        ).set_function(lambda: _model_load_seconds(app))
        Gauge("qa_ready", "1 when the model and index are loaded.", registry=self.registry).set_function(
            lambda: float(getattr(app.state, "services", None) is not None)
        )
        for stat, documentation in (
            ("batches", "Forward passes of the query model (each embeds one micro-batch)."),
            ("encoded", "Questions embedded by the query model."),
            ("cache_hits", "Questions whose embedding came from the cache."),
            ("largest_batch", "Most questions embedded in one forward pass so far."),
            ("direct", "Lone questions sent to the query model straight from the event loop."),
        ):
            Gauge(f"qa_query_{stat}", documentation, registry=self.registry).set_function(
                partial(_batch_stat, app, stat)
            )

    def _histogram(self, name: str, documentation: str, labels: list[str]) -> Histogram:
        return Histogram(name, documentation, labels, buckets=LATENCY_BUCKETS, registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float, timing: ServerTiming) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # label sets are few (route templates, not paths): each is looked up once
            children = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)
        for entry in timing.entries:
            stage = self._stages.get((route, entry.name))
            if stage is None:
                stage = self._stages[(route, entry.name)] = self.stages.labels(route, entry.name)
            stage.observe(entry.seconds)


def _manifest_value(app: FastAPI, name: str) -> float:
    services = getattr(app.state, "services", None)
    if services is None:
        return float("nan")
    return float(getattr(services.index.manifest, name))


def _batch_stat(app: FastAPI, name: str) -> float:
    batcher = getattr(getattr(app.state, "services", None), "batcher", None)
    return float(getattr(batcher.stats, name)) if batcher is not None else float("nan")


def _model_load_seconds(app: FastAPI) -> float:
    services = getattr(app.state, "services", None)
    if services is None:
        return float("nan")
    return float(getattr(services.embedder, "load_seconds", float("nan")))


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/documents/{doc_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def incoming_request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is a sane token, else a fresh one."""
    for key, value in scope.get("headers", []):
        if key == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1").strip()
            if _VALID_ID.match(candidate):
                return candidate
            break
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


# Generated ids: 32 hex digits, a random prefix per process and a counter (unique without a system call
# for randomness on every request; they name log lines, they are not secrets).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


class ObservabilityMiddleware:
    """Pure ASGI (no response buffering): request id in and out, Server-Timing, one log line, metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = incoming_request_id(scope)
        timing = ServerTiming()
        state = scope.setdefault("state", {})
        state[STATE_KEY] = timing
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                value = timing.header(time.perf_counter() - started)
                headers.append((b"server-timing", value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = str(scope.get("method", ""))
            self.metrics.observe(method, route, status, seconds, timing)
            if access_log.isEnabledFor(logging.INFO):  # the line's fields are not built for nothing
                extra: dict[str, Any] = {
                    "method": method,
                    "path": scope.get("path", ""),
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                }
                if timing.entries:
                    extra["timings_ms"] = {e.name: round(e.seconds * 1000, 2) for e in timing.entries}
                access_log.info(
                    "%s %s %d %.1fms", method, scope.get("path", ""), status, seconds * 1000, extra=extra
                )
            request_id_var.reset(token)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install_observability(app: FastAPI) -> Metrics:
    """Add the middleware and GET /metrics to ``app``; returns its metrics (also at ``app.state.metrics``)."""
    app.state.metrics = Metrics(app)
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)
    app.include_router(router)
    return app.state.metrics
