"""Turn library results into API models; the HTML pages render these same models."""

from __future__ import annotations

from typing import Any

from qa.api.models import (
    AnswerSentence,
    AskResponse,
    DocumentOut,
    DocumentSummary,
    PassageOut,
    ReadingOut,
    SectionOut,
    Span,
    TrialOut,
)
from qa.chunking import Passage
from qa.documents import Document, DocumentMeta
from qa.facts.model import Trial
from qa.index.store import SearchIndex
from qa.pipeline import AskResult
from qa.retrieval import Hit


def passage_url(base_url: str, passage: Passage) -> str:
    return f"{base_url.rstrip('/')}/documents/{passage.doc_id}#p-{passage.id}"


def passage_out(
    index: SearchIndex, passage: Passage, score: float, base_url: str, highlights: list[Span] | None = None
) -> PassageOut:
    doc = index.document(passage.doc_id)
    return PassageOut(
        id=passage.id,
        doc_id=passage.doc_id,
        title=doc.meta.display_title,
        section=passage.section,
        kind=passage.kind,
        text=passage.text,
        start=passage.start,
        end=passage.end,
        score=round(score, 6),
        url=passage_url(base_url, passage),
        highlights=highlights or [],
        refs=passage.refs,
        page=passage.page,
    )


def hits_out(index: SearchIndex, hits: list[Hit], base_url: str) -> list[PassageOut]:
    return [passage_out(index, h.passage, h.score, base_url) for h in hits]


def ask_response(index: SearchIndex, result: AskResult, base_url: str) -> AskResponse:
    highlights: dict[int, list[Span]] = {}
    sentences = []
    for s in result.answer.sentences:
        highlights.setdefault(s.hit_index, []).append(Span(start=s.sentence.start, end=s.sentence.end))
        sentences.append(
            AnswerSentence(
                text=s.text,
                marker=s.hit_index + 1,
                passage_id=result.hits[s.hit_index].passage.id,
                doc_id=s.sentence.doc_id,
                start=s.sentence.start,
                end=s.sentence.end,
                score=round(s.score, 4),
            )
        )
    passages = [
        passage_out(index, h.passage, h.score, base_url, sorted(highlights.get(i, []), key=lambda x: x.start))
        for i, h in enumerate(result.hits)
    ]
    return AskResponse(
        conversation_id=result.conversation_id,
        question=result.question,
        resolved_question=result.resolution.resolved,
        answer=result.answer.text,
        abstained=result.abstained,
        kind=result.answer.kind,
        reason=result.answer.reason,
        reason_note=REASON_NOTES.get(result.answer.reason) if result.abstained else None,
        sentences=sentences,
        passages=passages,
        trials=[trial_out(t) for t in result.trials],
        trials_total=result.trials_total,
        evidence=round(result.answer.evidence, 4),
        nearest_trials=[trial_out(t) for t in result.nearest],
        reading=reading_out(result.resolution.to_dict()),
    )


def filter_summary(filters: dict[str, Any]) -> str:
    """A trial filter (ReadingOut.filters) as 'kind: values; ...' for a reader (``ReadingOut.filter_summary``,
    which the page and the chat script both show)."""
    parts = []
    for key, value in filters.items():
        if not value or key == "axis":
            continue
        if key == "groups":
            items = [" or ".join(str(item[1]).split("|")[0] for item in group) for group in value]
            parts.append("interventions: " + " and ".join(items))
        else:
            shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
            parts.append(f"{key}: {shown}")
    return "; ".join(parts) or "any trial"


# Why an answer abstained, for the reader (AskResponse.reason_note, from .reason); "answered" needs none.
REASON_NOTES = {
    "unknown_entity": "Not answered: the question names something no indexed document mentions.",
    "value_not_reported": "Not answered: the documents name what the question asks about, but report no "
    "figure of the asked kind for it; the sentences above are where they name it.",
    "no_evidence": "Not answered: no passage is close enough to the question.",
    "no_matching_trial": "Not answered: no trial the indexed documents report matches every part of the "
    "question; the nearest records, if any, are listed apart.",
}


def reading_out(reading: dict[str, Any]) -> ReadingOut:
    """How the question was read, with its trial filter said in words."""
    filters = reading.get("filters")
    return ReadingOut.model_validate(
        {**reading, "filter_summary": filter_summary(filters) if filters else None}
    )


def trial_out(trial: Trial) -> TrialOut:
    """A trial as the API states it: its record (``Trial.to_dict``, the stable field names), typed."""
    return TrialOut.model_validate(trial.to_dict())


def document_summary(index: SearchIndex, doc: Document | DocumentMeta) -> DocumentSummary:
    """A document's listing entry; from its metadata alone (no text read) when given a DocumentMeta."""
    m = doc.meta if isinstance(doc, Document) else doc
    return DocumentSummary(
        id=m.id,
        title=m.title,
        authors=m.authors,
        journal=m.journal,
        year=m.year,
        doi=m.doi,
        url=m.url,
        licence=m.licence,
        file=m.file,
        characters=len(doc.text) if isinstance(doc, Document) else index.documents.lengths[m.id],
        passages=index.passages.count(m.id),
    )


def document_out(index: SearchIndex, doc: Document) -> DocumentOut:
    summary = document_summary(index, doc)
    return DocumentOut(
        **summary.model_dump(),
        text=doc.text,
        sections=[SectionOut.model_validate(s.to_dict()) for s in doc.sections],
    )
