"""Request limits at the ASGI edge: body size (413, before the body is read), body encoding, per-client rate (429)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.errors import error_response
from qa.settings import Settings
from qa.text_rules import has_control_chars

# Probes and scrapes are never limited: a busy client must not make the service look dead.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_TRACKED_CLIENTS = 10_000
UPLOAD_PREFIX = "/api/documents"
MULTIPART_SLACK = 64_000


class TokenBucket:
    """Per-key token buckets: ``rate`` tokens a second, holding at most ``burst``; bounded LRU of keys."""

    def __init__(
        self, per_minute: int, *, burst: int | None = None, max_keys: int = MAX_TRACKED_CLIENTS
    ) -> None:
        self.rate = per_minute / 60.0
        # A client may spend a tenth of its minute at once (at least 10 requests), then refills steadily.
        self.burst = float(burst if burst is not None else max(10, per_minute // 10))
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when ``key`` may go ahead (a token is spent), else the seconds until its next token."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:  # forgetting a client only gives it a full bucket
                self._buckets.popitem(last=False)
            return wait


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


def _is_json(content_type: bytes | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def url_problem(scope: Scope) -> str | None:
    """Why the path or query string is refused (control characters, not UTF-8), or None."""
    if has_control_chars(str(scope.get("path", ""))):
        return "the URL path contains control characters"
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return None
    for pair in raw.split(b"&"):
        for part in pair.split(b"=", 1):
            try:
                value = unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                return "the query string is not UTF-8"
            if has_control_chars(value):
                return "the query string contains control characters"
    return None


def json_problem(body: bytes) -> tuple[str, str] | None:
    """(code, message) when a JSON body is not UTF-8 or holds a string with control characters.

    Malformed JSON is left to the app, which names where it breaks.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "bad_encoding", f"the JSON body is not UTF-8 (byte {exc.start})"
    if "\\u" not in text and not has_control_chars(text):
        return None  # nothing to find: skip parsing (raw controls are invalid JSON anyway)
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if _any_control(value):
        return "bad_input", "a string in the JSON body contains control characters"
    return None


def _any_control(value: Any) -> bool:
    if isinstance(value, str):
        return has_control_chars(value)
    if isinstance(value, dict):
        return any(_any_control(k) or _any_control(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_any_control(v) for v in value)
    return False


class _Refused(Exception):
    """A request the edge answers itself, with ``response`` (the one error shape)."""

    def __init__(self, response: Response) -> None:
        self.response = response


class LimitsMiddleware:
    """Pure ASGI: refuses over-limit clients and oversized or mis-encoded bodies with the one error shape.

    Checks run in order: the client's rate, the URL, the declared length, then the body. Bodies are small here
    (``max_body_bytes``), so the body is read once, in full, while its bytes are counted (refused as soon as
    it passes the limit), checked, and handed on to the app in one piece.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, rate_limit_per_minute: int, upload_max_bytes: int = 0
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Document uploads (POST/PUT under UPLOAD_PREFIX) may be as large as the upload limit, plus the
        # multipart framing; the route bounds the file itself.
        self.upload_max_bytes = max(max_body_bytes, upload_max_bytes + MULTIPART_SLACK)
        self.bucket = TokenBucket(rate_limit_per_minute) if rate_limit_per_minute > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_rate(scope)
            self._check_url(scope)
            limit = self._limit(scope)
            if not self._has_body(scope, limit):
                await self.app(scope, receive, send)
                return
            body = await self._read_body(receive, limit)
            if body is None:
                return  # the client went away before sending all of it
            self._check_encoding(scope, body)
        except _Refused as refused:
            await refused.response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _check_rate(self, scope: Scope) -> None:
        if self.bucket is None or scope.get("path") in UNLIMITED_PATHS:
            return
        client = scope.get("client")
        wait = self.bucket.take(str(client[0]) if client else "unknown")
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise _Refused(
                error_response(
                    429,
                    "rate_limited",
                    f"too many requests from this address; retry in {retry} s",
                    {"limit_per_minute": round(self.bucket.rate * 60)},
                    headers={"Retry-After": str(retry)},
                )
            )

    @staticmethod
    def _check_url(scope: Scope) -> None:
        problem = url_problem(scope)
        if problem:
            raise _Refused(error_response(400, "bad_request", problem))

    def _limit(self, scope: Scope) -> int:
        path = str(scope.get("path", ""))
        if scope.get("method") in ("POST", "PUT") and (
            path == UPLOAD_PREFIX or path.startswith(UPLOAD_PREFIX + "/")
        ):
            return self.upload_max_bytes
        return self.max_body_bytes

    def _has_body(self, scope: Scope, limit: int) -> bool:
        """Whether a body follows; refuses a declared length that is not a number or too large (413 before a
        byte of it is read)."""
        declared = _header(scope, b"content-length")
        if declared is None:
            return _header(scope, b"transfer-encoding") is not None
        if not declared.strip().isdigit():
            raise _Refused(error_response(400, "bad_request", "Content-Length is not a number"))
        if int(declared) > limit:
            raise _Refused(self._too_large(limit))
        return True

    async def _read_body(self, receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None when the client disconnects; 413 as soon as it passes the limit."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body.extend(message.get("body", b""))
            if len(body) > limit:
                raise _Refused(self._too_large(limit))
            if not message.get("more_body", False):
                return bytes(body)

    @staticmethod
    def _check_encoding(scope: Scope, body: bytes) -> None:
        if body and _is_json(_header(scope, b"content-type")):
            refused = json_problem(body)
            if refused:
                raise _Refused(error_response(400, refused[0], refused[1]))

    def _too_large(self, limit: int) -> Response:
        return error_response(
            413,
            "too_large",
            f"request body larger than {limit} bytes",
            {"max_body_bytes": limit},
            headers={"Connection": "close"},
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then waits for the disconnect as the server
    would."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def install_limits(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        LimitsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        upload_max_bytes=int(settings.upload_max_mb * 1e6),
    )
