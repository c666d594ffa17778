"""Documents and passages: metadata, full text with the section tree, and single passages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from qa.api.deps import ServicesDep
from qa.api.models import DocumentOut, DocumentSummary, PassageOut
from qa.api.present import document_out, document_summary, passage_out

router = APIRouter(prefix="/api", tags=["documents"])
DocId = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/documents", response_model=list[DocumentSummary])
def list_documents(services: ServicesDep) -> list[DocumentSummary]:
    """Every indexed document with its metadata."""
    return [document_summary(services.index, d) for d in services.index.documents.metas.values()]


@router.get("/documents/{doc_id}", response_model=DocumentOut)
def get_document(doc_id: DocId, services: ServicesDep) -> DocumentOut:
    """A document's text and section tree (offsets index into `text`)."""
    return document_out(services.index, services.index.document(doc_id))


@router.get("/passages/{passage_id}", response_model=PassageOut)
def get_passage(passage_id: DocId, request: Request, services: ServicesDep) -> PassageOut:
    """One passage by id."""
    passage = services.index.passage(passage_id)
    return passage_out(services.index, passage, 0.0, str(request.base_url))
