"""The document view: whole text with its section outline, passage anchors and an optional highlight."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from qa.api.deps import ServicesDep
from qa.api.present import document_out, document_summary
from qa.chunking import Passage
from qa.errors import NotFound, QAError
from qa.web.segments import Span, document_blocks
from qa.web.templating import error_page, render

router = APIRouter(include_in_schema=False)
_SPAN = re.compile(r"^(\d{1,9})-(\d{1,9})$")


def parse_span(value: str | None, length: int) -> Span | None:
    """``start-end`` within the text, or None (a bad or out-of-range span is ignored, not an error)."""
    m = _SPAN.match(value or "")
    if not m:
        return None
    start, end = int(m.group(1)), int(m.group(2))
    return (start, end) if 0 <= start < end <= length else None


@router.get("/documents")
def documents_page(request: Request, services: ServicesDep) -> Response:
    documents = [document_summary(services.index, d) for d in services.index.documents.metas.values()]
    settings = services.settings
    context = {"documents": documents, "can_add": bool(settings.api_key), "max_mb": settings.upload_max_mb}
    return render(request, "documents.html", context, json_url="/api/documents")


@router.get("/documents/{doc_id}")
def document_page(
    request: Request,
    services: ServicesDep,
    doc_id: Annotated[str, Path(min_length=1, max_length=200)],
    hl: Annotated[str | None, Query(max_length=40)] = None,
    p: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """``p`` marks a passage (also merged ones) and ``hl`` a sentence, so links work without JavaScript."""
    index = services.index
    try:
        doc = document_out(index, index.document(doc_id))
    except QAError as exc:
        return error_page(request, exc)
    passages = index.passages.of_document(doc_id)
    focus: Passage | None = None
    if p:
        try:
            focus = index.passage(p)
        except NotFound:
            focus = None
        if focus is not None and focus.doc_id != doc_id:
            focus = None
    blocks = document_blocks(doc, passages, parse_span(hl, len(doc.text)), focus)
    return render(
        request,
        "document.html",
        {"doc": doc, "blocks": blocks, "focus": focus},
        json_url=f"/api/documents/{doc.id}",
    )
