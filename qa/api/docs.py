"""GET /docs: Swagger UI served offline from the swagger-ui-bundle package, with no inline script (CSP-clean)."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from qa.text_rules import CONTROL_CHARS

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"

# FastAPI's own /docs page loads Swagger UI from a CDN and starts it with an inline <script>; this page
# loads the same UI from this server and starts it from /docs/init.js, so it works offline and under the
# strict Content-Security-Policy every other page gets.
_INIT_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.getElementById("swagger-ui").dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
  });
});
"""

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
def swagger_ui(request: Request) -> HTMLResponse:
    title = html.escape(request.app.title)
    openapi_url = html.escape(request.app.openapi_url or "/openapi.json")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/init.js"></script>
</body>
</html>
"""
    return HTMLResponse(page)


@router.get(DOCS_PATH + "/init.js")
def swagger_init() -> Response:
    return Response(_INIT_JS, media_type="text/javascript")


def install_docs(app: FastAPI) -> None:
    """Serve /docs offline; the app must be created with ``docs_url=None`` and ``redoc_url=None``."""
    try:
        import swagger_ui_bundle
    except ImportError as exc:  # pragma: no cover - a dependency
        raise RuntimeError("the API docs need swagger-ui-bundle: pip install swagger-ui-bundle") from exc
    app.include_router(router)
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-assets")


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message", "detail"],
            "properties": {
                "status": {"type": "integer", "description": "The HTTP status code."},
                "code": {"type": "string", "description": "A stable machine-readable code."},
                "message": {"type": "string", "description": "What went wrong, for people."},
                "detail": {"description": "Structured detail (validation errors, limits), or null."},
            },
        }
    },
}
NO_CONTROL_PATTERN = f"^[^{CONTROL_CHARS}]*$"
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _no_control_chars(schema: dict[str, Any]) -> None:
    """Give a string schema (or each string branch of anyOf) the pattern the limits middleware enforces."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "array" and isinstance(branch.get("items"), dict):
            _no_control_chars(branch["items"])  # a list of strings: each item
        elif branch.get("type") == "string" and "pattern" not in branch and "enum" not in branch:
            branch["pattern"] = NO_CONTROL_PATTERN


def _request_body_schemas(schema: dict[str, Any]) -> set[str]:
    """Names of the component schemas that request bodies refer to (responses keep theirs untouched)."""
    names = set()
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                ref = str(media.get("schema", {}).get("$ref", ""))
                if ref.startswith("#/components/schemas/"):
                    names.add(ref.rsplit("/", 1)[1])
    return names


def document_errors(app: FastAPI) -> None:
    """State the API-wide rules in the OpenAPI schema: the one error shape (as every 422 and as every
    operation's default response) and that no string may carry control characters."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        for name in _request_body_schemas(schema):
            for prop in schemas.get(name, {}).get("properties", {}).values():
                _no_control_chars(prop)
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                for parameter in operation.get("parameters", []):
                    _no_control_chars(parameter.get("schema", {}))
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": "Invalid request", "content": _ERROR_CONTENT}
                responses.setdefault(
                    "default",
                    {
                        "description": "An error (400, 401, 403, 404, 413, 429, 503, ...)",
                        "content": _ERROR_CONTENT,
                    },
                )
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
