"""Request ids, JSON log lines with timing, Server-Timing and the Prometheus /metrics endpoint."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from qa.api.app import create_app
from qa.api.observability import UNMATCHED
from qa.api.timing import ServerTiming, ServerTimingDep
from qa.logging_setup import JsonFormatter, configure_logging
from qa.services import Services


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


@pytest.fixture(scope="module")
def probe_client(services: Services) -> Iterator[TestClient]:
    """An app of its own (own registry) with a templated route that reports Server-Timing stages."""
    app = create_app(services=services)
    router = APIRouter()

    @router.get("/probe/{item_id}")
    def probe(item_id: str, timing: ServerTimingDep) -> dict[str, Any]:
        with timing.measure("retrieval"):
            pass
        with timing.measure("facts", "trial filters"):
            pass
        timing.add("answer", 0.002)
        return {"item": item_id}

    app.include_router(router)
    with TestClient(app) as c:
        yield c


def test_request_id_is_echoed(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "notebook-42.a"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "notebook-42.a"


def test_request_id_is_generated_when_absent_or_unsafe(client: TestClient) -> None:
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert len(first) == 32 and first != second
    unsafe = client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 200}).headers["x-request-id"]
    assert " " not in unsafe and len(unsafe) == 32


def test_request_id_on_error_responses(client: TestClient) -> None:
    r = client.get("/no/such/page", headers={"X-Request-ID": "err-1"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "err-1"
    assert r.json()["error"]["code"] == "not_found"


def test_access_log_record_is_json_with_request_id_and_duration(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="qa.access"):
        client.get("/readyz", headers={"X-Request-ID": "log-check-1"})
    records = [r for r in caplog.records if r.name == "qa.access" and r.request_id == "log-check-1"]  # type: ignore[attr-defined]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["request_id"] == "log-check-1"
    assert line["route"] == "/readyz" and line["status"] == 200 and line["method"] == "GET"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["logger"] == "qa.access"


def test_json_log_format_writes_one_json_object_per_line(client: TestClient) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    try:
        client.get("/healthz", headers={"X-Request-ID": "json-line-1"})
        logging.getLogger("qa.test").info("outside a request")
    finally:
        configure_logging("INFO", "text")
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    access = [x for x in lines if x.get("logger") == "qa.access" and x["request_id"] == "json-line-1"]
    assert len(access) == 1 and access[0]["path"] == "/healthz" and access[0]["duration_ms"] >= 0
    outside = [x for x in lines if x.get("logger") == "qa.test"]
    assert outside and outside[0]["request_id"] == "-"


def test_server_timing_header_lists_the_recorded_stages(probe_client: TestClient) -> None:
    r = probe_client.get("/probe/abc")
    assert r.status_code == 200
    header = r.headers["server-timing"]
    names = [part.strip().split(";")[0] for part in header.split(",")]
    assert names == ["retrieval", "facts", "answer", "app"]
    assert "facts;dur=" in header and 'desc="trial filters"' in header
    assert "answer;dur=2.0" in header


def test_metrics_count_requests_by_route_template(probe_client: TestClient) -> None:
    for item in ("a", "b", "c"):
        probe_client.get(f"/probe/{item}")
    probe_client.get("/definitely/missing")
    r = probe_client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        value(text, "qa_http_requests_total", method="GET", route="/probe/{item_id}", status="200") or 0
    ) >= 3
    assert value(text, "qa_http_requests_total", method="GET", route=UNMATCHED, status="404") == 1
    assert "/definitely/missing" not in text and "/probe/a" not in text
    count = value(text, "qa_http_request_duration_seconds_count", method="GET", route="/probe/{item_id}")
    assert count is not None and count >= 3
    stage = value(text, "qa_stage_duration_seconds_count", route="/probe/{item_id}", stage="retrieval")
    assert stage is not None and stage >= 3


def test_metrics_report_the_index_and_model(client: TestClient, services: Services) -> None:
    client.get("/healthz")
    text = client.get("/metrics").text
    assert value(text, "qa_index_passages") == services.index.manifest.passages > 0
    assert value(text, "qa_index_documents") == services.index.manifest.documents
    assert value(text, "qa_model_load_seconds") == pytest.approx(services.embedder.load_seconds)
    assert value(text, "qa_ready") == 1
    assert (value(text, "qa_http_requests_total", method="GET", route="/healthz", status="200") or 0) >= 1


def test_each_app_has_its_own_registry(client: TestClient, probe_client: TestClient) -> None:
    assert client.app.state.metrics.registry is not probe_client.app.state.metrics.registry  # type: ignore[attr-defined]
    assert "/probe/{item_id}" not in client.get("/metrics").text


def test_server_timing_recorder() -> None:
    timing = ServerTiming()
    with pytest.raises(RuntimeError), timing.measure("retrieval"):
        raise RuntimeError("still recorded")
    timing.add("answer", 0.0125, 'says "hi"')
    assert [e.name for e in timing.entries] == ["retrieval", "answer"]
    assert timing.header(0.5).endswith(', answer;dur=12.5;desc="says \\"hi\\"", app;dur=500.0')
    with pytest.raises(ValueError):
        timing.add("not a token", 1.0)


def test_ask_reports_its_stages_in_server_timing(client: TestClient) -> None:
    r = client.post("/api/ask", json={"question": "Which trials combine TLR9 agonists with pembrolizumab?"})
    assert r.status_code == 200
    names = [part.strip().split(";")[0] for part in r.headers["server-timing"].split(",")]
    assert {"retrieval", "facts", "answer"} <= set(names) and names[-1] == "app"
    text = client.get("/metrics").text
    for stage in ("retrieval", "facts", "answer"):
        assert (value(text, "qa_stage_duration_seconds_count", route="/api/ask", stage=stage) or 0) >= 1
