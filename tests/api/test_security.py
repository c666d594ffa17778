"""Security headers on every response, framing rules for /embed, CORS off by default, API-key gating, /docs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qa.api.app import create_app
from qa.api.security import BASE_POLICY, SecurityHeadersMiddleware
from qa.services import Services

if TYPE_CHECKING:
    from httpx2 import Response  # what starlette's TestClient returns

KEY = "a-test-key-that-is-long-enough"
WIKI = "https://wiki.example.org"


def _app(services: Services, **overrides: object) -> FastAPI:
    settings = services.settings.model_copy(update={"rate_limit_per_minute": 0, **overrides})
    return create_app(settings, services=services)


@pytest.fixture(scope="module")
def plain(services: Services) -> Iterator[TestClient]:
    with TestClient(_app(services)) as c:
        yield c


def _csp(response: Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {d.split()[0]: d.partition(" ")[2] for d in (x.strip() for x in policy.split(";")) if d}


def _assert_page_headers(response: Response) -> None:
    csp = _csp(response)
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert (
        csp["object-src"] == "'none'" and csp["base-uri"] == "'none'" and csp["frame-ancestors"] == "'none'"
    )
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert "unsafe-eval" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize(
    ("method", "url", "payload"),
    [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("POST", "/api/ask", {"question": "Which trials combine TLR9 agonists with pembrolizumab?"}),
        ("POST", "/api/ask", {"question": ""}),  # 422
        ("GET", "/api/search?q=melanoma", None),
        ("GET", "/api/documents/no-such-document", None),  # 404
        ("GET", "/no/such/page", None),
        ("GET", "/docs", None),
        ("GET", "/openapi.json", None),
        ("GET", "/metrics", None),
        ("POST", "/api/admin/reload", None),  # 403
    ],
)
def test_every_response_carries_the_security_headers(
    plain: TestClient, method: str, url: str, payload: dict[str, str] | None
) -> None:
    response = plain.request(method, url, json=payload)
    _assert_page_headers(response)


def test_even_an_unexpected_error_carries_them(services: Services) -> None:
    app = _app(services)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/boom")
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    _assert_page_headers(response)


def test_the_embed_widget_may_be_framed_by_the_configured_origins_only(services: Services) -> None:
    with TestClient(_app(services, frame_ancestors=WIKI)) as c:
        embed = c.get("/embed")
        elsewhere = c.get("/api/search?q=melanoma")
    assert _csp(embed)["frame-ancestors"] == WIKI
    assert "x-frame-options" not in embed.headers  # it cannot name an origin; CSP decides
    assert _csp(embed)["script-src"] == "'self'"
    assert _csp(elsewhere)["frame-ancestors"] == "'none'" and elsewhere.headers["x-frame-options"] == "DENY"


def test_the_embed_default_allows_any_site_to_frame_it(plain: TestClient) -> None:
    response = plain.get("/embed/anything")
    assert _csp(response)["frame-ancestors"] == "*"
    assert _csp(plain.get("/embedded"))["frame-ancestors"] == "'none'"  # a prefix of the word is not /embed


def test_frame_ancestors_cannot_smuggle_other_directives() -> None:
    with pytest.raises(ValueError, match="frame_ancestors"):
        SecurityHeadersMiddleware(FastAPI(), frame_ancestors="https://a.example; script-src *")


def test_cors_is_off_by_default(plain: TestClient) -> None:
    preflight = plain.options(
        "/api/ask",
        headers={"Origin": WIKI, "Access-Control-Request-Method": "POST"},
    )
    simple = plain.get("/api/search?q=melanoma", headers={"Origin": WIKI})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


def test_cors_allows_only_the_configured_origins(services: Services) -> None:
    with TestClient(_app(services, cors_origins=[WIKI])) as c:
        allowed = c.options("/api/ask", headers={"Origin": WIKI, "Access-Control-Request-Method": "POST"})
        simple = c.get("/api/search?q=melanoma", headers={"Origin": WIKI})
        other = c.get("/api/search?q=melanoma", headers={"Origin": "https://evil.example"})
        key_preflight = c.options(
            "/api/admin/reload",
            headers={
                "Origin": WIKI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key",
            },
        )
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == WIKI
    assert simple.headers["access-control-allow-origin"] == WIKI
    assert "access-control-allow-origin" not in other.headers
    # The admin key is never sent from a browser on another site.
    assert key_preflight.status_code == 400
    _assert_page_headers(allowed)


def test_state_changing_endpoints_are_disabled_without_an_api_key(plain: TestClient) -> None:
    response = plain.post("/api/admin/reload", headers={"X-API-Key": "anything"})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "forbidden" and "QA_API_KEY" in error["message"]


def test_state_changing_endpoints_need_the_right_key(services: Services) -> None:
    with TestClient(_app(services, api_key=KEY)) as c:
        missing = c.post("/api/admin/reload")
        wrong = c.post("/api/admin/reload", headers={"X-API-Key": KEY[:-1]})
        right = c.post("/api/admin/reload", headers={"X-API-Key": KEY})
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert right.status_code == 200 and right.json()["status"] == "unchanged"


def test_every_state_changing_route_is_behind_the_key(plain: TestClient) -> None:
    """Any POST/PUT/PATCH/DELETE except asking and searching must answer 403 while no key is set."""
    read_only = {"/api/ask"}  # answering records a conversation turn, but changes no shared state
    schema = plain.get("/openapi.json").json()
    for path, item in schema["paths"].items():
        for method in item:
            if method in ("post", "put", "patch", "delete") and path not in read_only:
                url = re.sub(r"\{[^}]+\}", "x", path)
                assert plain.request(method.upper(), url).status_code == 403, (method, path)


def test_docs_are_served_offline_without_inline_script(plain: TestClient) -> None:
    page = plain.get("/docs")
    assert page.status_code == 200
    html = page.text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html and "http" not in html  # nothing from a CDN
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith("/"), ref
        assert plain.get(ref).status_code == 200, ref
    assert plain.get("/redoc").status_code == 404  # ReDoc would load from a CDN: not served
    assert _csp(page)["script-src"] == "'self'"
    assert BASE_POLICY in page.headers["content-security-policy"]


def test_html_pages_have_no_inline_script_or_style(plain: TestClient) -> None:
    """Every HTML page the app serves (without path parameters) works under the strict policy."""
    for route in plain.app.routes:  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if "GET" not in (getattr(route, "methods", None) or set()) or "{" in path:
            continue
        response = plain.get(path)
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        html = response.text
        for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S):
            assert "src=" in attrs and not body.strip(), (path, attrs)
        assert not re.search(r"<style[\s>]", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path  # no inline event handlers
        assert not re.search(r"\sstyle\s*=", html), path
