"""Response models of the document-change routes (POST/PUT/DELETE /api/documents)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from qa.api.models import DocumentSummary


class ChangeOut(BaseModel):
    build: str | None = Field(description="Build folder now served (None when nothing changed).")
    documents: int | None
    passages: int | None
    passages_embedded: int = Field(description="Passages the model embedded (the rest were reused).")
    sentences_embedded: int
    seconds: float = Field(description="Time to build the next index from the current one.")
    stage_seconds: dict[str, float] = Field(
        default_factory=dict, description="That time by stage (reading, chunking, embedding, facts ...)."
    )


class DocumentRecord(DocumentSummary):
    status: Literal["added", "exists", "replaced"] = Field(
        description="'exists' when the same bytes were already indexed (nothing changed)."
    )
    change: ChangeOut
