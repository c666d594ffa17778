"""Jinja2 environment (autoescape on), template helpers and the page response with its JSON twin."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape

from qa.api.models import TrialOut
from qa.errors import QAError


def _web_dir() -> Path:
    """web/ beside the source tree (a checkout or editable install), else in the working directory
    (an installed package run from the project folder, as the Docker image does from /app)."""
    candidates = [Path(__file__).resolve().parent.parent.parent / "web", Path.cwd() / "web"]
    return next((c for c in candidates if (c / "templates").is_dir()), candidates[0])


WEB_DIR = _web_dir()
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
_MARKER = re.compile(r"\[(\d+)\]")

# autoescape on for every template: document text and questions are untrusted
templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True))


def doc_link(
    doc_id: str, passage_id: str | None = None, start: int | None = None, end: int | None = None
) -> str:
    """The document view at a passage, with the sentence ``start``-``end`` highlighted."""
    params = {}
    if passage_id:
        params["p"] = passage_id
    if start is not None and end is not None:
        params["hl"] = f"{start}-{end}"
    url = f"/documents/{quote(doc_id, safe='')}"
    if params:
        url += "?" + urlencode(params)
    return url + (f"#p-{passage_id}" if passage_id else "")


def page_url(path: str, **params: Any) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


def cite(text: str, prefix: str) -> Markup:
    """Answer text (escaped) whose [n] markers link to the passage cards ``#{prefix}-p{n}``."""
    out = []
    last = 0
    for m in _MARKER.finditer(text):
        out.append(escape(text[last : m.start()]))
        n = m.group(1)
        out.append(
            Markup('<a class="cite" href="#{0}-p{1}" aria-label="source {1}">[{1}]</a>').format(prefix, n)
        )
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def trial_label(trial: TrialOut) -> str:
    return trial.label or trial.name or ", ".join(trial.nct_ids) or trial.id


templates.env.globals.update(
    doc_link=doc_link,
    page_url=page_url,
    trial_label=trial_label,
)
templates.env.filters["cite"] = cite


def render(
    request: Request, name: str, context: dict[str, Any], *, json_url: str | None, status_code: int = 200
) -> HTMLResponse:
    """A page: ``json_url`` is its JSON twin, announced with <link rel="alternate">."""
    permalink = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    return templates.TemplateResponse(
        request,
        name,
        {"json_url": json_url, "permalink": permalink, **context},
        status_code=status_code,
    )


def error_page(request: Request, exc: QAError, *, template: str = "error.html") -> HTMLResponse:
    return render(request, template, {"error": exc.message}, json_url=None, status_code=exc.status)
