"""Security headers on every response (CSP without inline script, framing rules, nosniff, referrer) and CORS."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.api.errors import error_response
from qa.settings import Settings

EMBED_PREFIX = "/embed"
# No inline script or style anywhere (the pages and /docs load theirs from this origin); images may be data:.
BASE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)
REFERRER_POLICY = "strict-origin-when-cross-origin"


def is_embed_path(path: str) -> bool:
    return path == EMBED_PREFIX or path.startswith(EMBED_PREFIX + "/")


def content_security_policy(path: str, frame_ancestors: str) -> str:
    """The CSP for ``path``: the embed widget may be framed by ``frame_ancestors``, nothing else by anyone."""
    ancestors = frame_ancestors if is_embed_path(path) else "'none'"
    return f"{BASE_POLICY}; frame-ancestors {ancestors}"


class SecurityHeadersMiddleware:
    """Pure ASGI: adds the headers to every response, errors included, without buffering the body."""

    def __init__(self, app: ASGIApp, *, frame_ancestors: str) -> None:
        self.app = app
        if any(ch in frame_ancestors for ch in ";,\r\n"):
            raise ValueError(
                f"frame_ancestors must be CSP source expressions separated by spaces: {frame_ancestors!r}"
            )
        self.frame_ancestors = " ".join(frame_ancestors.split()) or "'none'"
        # Encoded once: the headers of the embed widget and of everything else.
        self._raw = {
            embed: [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers_for(path).items()
            ]
            for embed, path in ((True, EMBED_PREFIX), (False, "/"))
        }

    def headers_for(self, path: str) -> dict[str, str]:
        headers = {
            "Content-Security-Policy": content_security_policy(path, self.frame_ancestors),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": REFERRER_POLICY,
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if not is_embed_path(path):
            # X-Frame-Options cannot name allowed origins, so the embed widget relies on CSP alone.
            headers["X-Frame-Options"] = "DENY"
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._raw[is_embed_path(str(scope.get("path", "")))]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)  # a route's own value wins
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # The outermost error handler would answer without these headers; answer here, then let it log.
            if not started:
                response = error_response(
                    500, "internal_error", "internal error; the server log has the details"
                )
                await response(scope, receive, send_with_headers)
            raise


def install_security(app: FastAPI, settings: Settings) -> None:
    """Security headers on every response; CORS only when origins are configured (off by default)."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Server-Timing", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware, frame_ancestors=settings.frame_ancestors)
