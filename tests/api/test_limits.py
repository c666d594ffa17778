"""Bad input at the edge: oversized bodies refused early (413), bad encodings and control characters (400),
malformed JSON and wrong types (422), and the per-client rate limit (429 with Retry-After)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import run_coroutine
from fastapi.testclient import TestClient
from live_server import serve

from qa.api.app import create_app
from qa.api.limits import LimitsMiddleware, TokenBucket
from qa.services import Services

QUESTION = "Which trials combine TLR9 agonists with pembrolizumab?"


def _error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message", "detail"}
    assert body["error"]["status"] == status and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient]:
    settings = services.settings.model_copy(update={"rate_limit_per_minute": 0, "max_body_bytes": 4096})
    with TestClient(create_app(settings, services=services)) as c:
        yield c


@pytest.fixture(scope="module")
def live(services: Services) -> Iterator[str]:
    settings = services.settings.model_copy(update={"rate_limit_per_minute": 0, "max_body_bytes": 4096})
    with serve(create_app(settings, services=services)) as url:
        yield url


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"question": "a', 422, "invalid_request"),  # malformed JSON
        (b"[1, 2]", 422, "invalid_request"),
        (b'{"question": 5}', 422, "invalid_request"),  # wrong type
        (b'{"question": "x", "top_k": "many"}', 422, "invalid_request"),
        (b'{"question": "x", "unexpected": 1}', 422, "invalid_request"),
        (b'{"question": "a\\u0000b"}', 400, "bad_input"),  # escaped control character
        (b'{"question": "a\\u001bb"}', 400, "bad_input"),
        ('{"question": "a\u0085b"}'.encode(), 400, "bad_input"),  # a C1 control, raw UTF-8
        (b'{"question": "a\x01b"}', 422, "invalid_request"),  # raw control characters are not JSON
        (b'{"question": "caf\xe9"}', 400, "bad_encoding"),  # Latin-1, not UTF-8
        (b"\xff\xfe{\x00}\x00", 400, "bad_encoding"),
    ],
)
def test_bad_bodies_get_a_4xx_json_error(client: TestClient, body: bytes, status: int, code: str) -> None:
    response = client.post("/api/ask", content=body, headers={"Content-Type": "application/json"})
    _error(response, status, code)  # type: ignore[arg-type]


def test_tabs_and_newlines_in_a_question_are_fine(client: TestClient) -> None:
    response = client.post(
        "/api/ask", json={"question": "Which trials combine\tTLR9 agonists\nwith pembrolizumab?"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/api/search?q=mel%00anoma",
        "/api/search?q=mel%1Banoma",
        "/api/search?q=caf%E9",
        "/api/documents/a%07b",
    ],
)
def test_control_characters_and_bad_encodings_in_urls_are_refused(client: TestClient, url: str) -> None:
    _error(client.get(url), 400, "bad_request")  # type: ignore[arg-type]


def test_oversized_body_is_refused_with_413(client: TestClient) -> None:
    big = json.dumps({"question": "x" * 10_000}).encode()
    error = _error(client.post("/api/ask", content=big, headers={"Content-Type": "application/json"}), 413)  # type: ignore[arg-type]
    assert error["code"] == "too_large" and error["detail"] == {"max_body_bytes": 4096}


def test_declared_length_is_refused_before_the_body_is_read(live: str) -> None:
    """Over a real socket: the server answers 413 after the headers, without waiting for the 10 MB body."""
    host, port = live.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n" + b'{"question": "'
        )
        started = time.monotonic()
        reply = b""
        while b'"too_large"' not in reply and time.monotonic() - started < 5:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        assert time.monotonic() - started < 5
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b'"too_large"' in body


def test_a_streamed_body_is_counted_and_cut_off(live: str) -> None:
    sent = 0
    OFFERED = 256 * 2**20  # noqa: N806  (were the body read whole, ~1 s over loopback)

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(OFFERED // 65536):  # 64 kB chunks, no Content-Length (chunked encoding)
            sent += 65536
            yield b" " * 65536

    with httpx.Client(timeout=10) as http:
        try:
            response = http.post(
                f"{live}/api/ask", content=chunks(), headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError:  # the server may close before the client has finished sending
            return
    _error(response, 413, "too_large")
    assert sent < OFFERED  # cut off: socket buffers hold a few MB of it on a busy machine, never 256 MB


def test_middleware_never_reads_a_body_whose_declared_length_is_too_big() -> None:
    reads = 0
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - must not run
        raise AssertionError("the app must not be called")

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/ask",
        "headers": [(b"content-length", b"999999")],
    }
    middleware = LimitsMiddleware(app, max_body_bytes=1024, rate_limit_per_minute=0)
    run_coroutine(middleware(scope, receive, send))
    assert reads == 0 and sent[0]["status"] == 413


def test_rate_limit_answers_429_with_retry_after(services: Services) -> None:
    settings = services.settings.model_copy(update={"rate_limit_per_minute": 60})  # a burst of 10
    with TestClient(create_app(settings, services=services)) as c:
        responses = [c.get("/api/documents") for _ in range(14)]
        probes = [c.get("/healthz").status_code for _ in range(5)]
    statuses = [r.status_code for r in responses]
    assert statuses[:10] == [200] * 10 and 429 in statuses[10:]  # (a slow machine may refill a token)
    limited = next(r for r in responses if r.status_code == 429)
    error = _error(limited, 429, "rate_limited")  # type: ignore[arg-type]
    assert error["detail"] == {"limit_per_minute": 60}
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert probes == [200] * 5  # health probes are never limited


def test_token_bucket_refills_per_client() -> None:
    bucket = TokenBucket(60, burst=2)
    assert bucket.take("a", now=0.0) == 0 and bucket.take("a", now=0.0) == 0
    wait = bucket.take("a", now=0.0)
    assert wait == pytest.approx(1.0)
    assert bucket.take("b", now=0.0) == 0  # another address has its own bucket
    assert bucket.take("a", now=1.0) == 0  # one token a second
    assert bucket.take("a", now=1.0) > 0


def test_token_bucket_forgets_the_oldest_clients_beyond_its_bound() -> None:
    bucket = TokenBucket(60, burst=1, max_keys=3)
    for key in "abcd":
        bucket.take(key, now=0.0)
    assert bucket.take("a", now=0.0) == 0  # forgotten, so a full bucket again
    assert len(bucket._buckets) == 3
