"""Request and response models of the JSON API; notebook users depend on these names, keep them stable."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from qa.settings import MAX_QUESTION_CHARS

MAX_DOCUMENT_FILTER = 100  # document ids in one filter
DocumentIdStr = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        ..., min_length=1, max_length=MAX_QUESTION_CHARS, description="The question, in plain English."
    )
    conversation_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Continue this conversation.",
    )
    top_k: int = Field(5, ge=1, le=20, description="How many passages to return.")
    documents: list[DocumentIdStr] | None = Field(
        None,
        max_length=MAX_DOCUMENT_FILTER,
        description="Answer from these documents only (ids from GET /api/documents: the file name without "
        "its extension); passages and trials come from them. Unknown ids get a 404 naming them. A follow-up "
        "without it keeps the previous turn's filter; an empty list lifts it.",
    )


class Span(BaseModel):
    start: int = Field(description="Character offset into the document text.")
    end: int


class PassageOut(BaseModel):
    id: str
    doc_id: str
    title: str = Field(description="The document's title (or its id when the title is unknown).")
    section: list[str] = Field(description="Section titles from the top level down.")
    kind: str = Field(description="body, caption or table (OCR'd table text is noisy).")
    text: str
    start: int = Field(description="Offset of the passage in the document text: text == document[start:end].")
    end: int
    score: float
    url: str = Field(description="The passage highlighted in the document view.")
    highlights: list[Span] = Field(default_factory=list, description="Answer sentences inside this passage.")
    refs: list[int] = Field(default_factory=list, description="The paper's own reference numbers cited here.")
    page: int | None = Field(
        None, description="1-based page of the passage's start (PDF documents), else null."
    )


class AnswerSentence(BaseModel):
    text: str
    marker: int = Field(description="1-based index into `passages`: the [n] after the sentence.")
    passage_id: str
    doc_id: str
    start: int
    end: int
    score: float


class EvidenceOut(BaseModel):
    passage_id: str
    doc_id: str
    quote: str
    start: int
    end: int
    refs: list[int] = []
    kind: str = Field(description="body, caption or table (OCR'd table text)")
    role: str = Field(description="mention, continuation, context or ocr-corrected")
    note: str | None = None


class OutcomeOut(BaseModel):
    measure: str
    value: str
    detail: str | None = None
    n: int | None = None
    denominator: int | None = None
    versus: list[str] = Field(
        default=[], description="The other arms' values, in the paper's order: ['43.5%']."
    )
    quote: str = Field(default="", description="The sentence that states it.")
    start: int
    end: int
    text: str


class TrialOut(BaseModel):
    id: str
    label: str
    name: str | None
    nct_ids: list[str]
    aliases: list[str]
    phase: str | None
    interventions: list[str]
    drug_classes: list[str]
    targets: list[str]
    conditions: list[str]
    setting: list[str]
    outcomes: list[OutcomeOut]
    status: str | None
    designations: list[str]
    biomarkers: list[str] = Field(default=[], description="Biomarker selections stated: 'PD-L1 ≥ 50%'.")
    registry_ids: list[str] = Field(
        default=[], description="Ids in registries other than ClinicalTrials.gov."
    )
    arms: list[str] = Field(default=[], description="The arms as the paper names them.")
    quote: str = Field(description="The primary evidence sentence.")
    passage_id: str
    doc_id: str
    start: int = Field(description="Offset of the quote in the document text.")
    end: int
    refs: list[int]
    source_kind: str
    evidence: list[EvidenceOut]


class ReadingOut(BaseModel):
    move: str = Field(
        description="new, fresh, replace, narrow, widen, results, item or topic (how a follow-up edits the "
        "previous turn)."
    )
    filters: dict[str, Any] | None = Field(
        description="The trial filter applied (drugs/classes/targets, conditions, phases, settings, "
        "outcomes, designations, biomarkers, statuses); null when the question is not about trials."
    )
    filter_summary: str | None = Field(
        None,
        description="The trial filter in words ('interventions: TLR9 agonist and pembrolizumab'); null "
        "without one.",
    )
    scope: list[str] | None = Field(description="Trial ids the filter ran within (a narrowed follow-up).")
    topic: str | None = Field(description="What the conversation is about, for pronouns in the next turn.")
    documents: list[str] | None = Field(
        None, description="The document ids passages and trials were restricted to; null: every document."
    )


class AskResponse(BaseModel):
    conversation_id: str
    question: str
    resolved_question: str = Field(description="The question as understood after the previous turn.")
    answer: str = Field(description="Answer sentences, each followed by a [n] citation marker.")
    abstained: bool = Field(description="True when the documents do not answer; `passages` are then related.")
    kind: str = Field(
        "other",
        description="What the question asks for: value, date, list, yesno, definition, mechanism or other.",
    )
    reason: str = Field(
        "answered",
        description="answered; no_evidence (nothing close enough); unknown_entity (the documents do not "
        "mention a thing the question names); value_not_reported (they name it but report no figure of the "
        "asked kind for it; `sentences` are then where they name it); no_matching_trial (the question asks for "
        "studies and no trial record matches its filter; `nearest_trials` are the closest records).",
    )
    reason_note: str | None = Field(
        None, description="Why it abstained, in a sentence for the reader; null when it answered."
    )
    sentences: list[AnswerSentence]
    passages: list[PassageOut]
    trials: list[TrialOut] = Field(
        description="Matching trials with their quotes, in document order (empty if not about trials): the "
        "first `QA_ASK_TRIALS_MAX` (100) when more match."
    )
    trials_total: int | None = Field(
        None,
        description="How many trials match (more than `trials` lists when it was cut at `QA_ASK_TRIALS_MAX`; "
        "GET /api/trials?q=<resolved_question> pages through them); null when the question is not about "
        "trials.",
    )
    evidence: float = Field(
        description="Strength of the best evidence; below the abstain threshold it abstains."
    )
    nearest_trials: list[TrialOut] = Field(
        default_factory=list,
        description="When the question asks for trials and none matches: the records meeting most of its "
        "filter (never mixed into `trials`).",
    )
    reading: ReadingOut = Field(description="How the question was read: the follow-up move, filters, topic.")


class SearchResponse(BaseModel):
    query: str
    passages: list[PassageOut]


class DocumentSummary(BaseModel):
    id: str
    title: str | None
    authors: list[str]
    journal: str | None
    year: int | None
    doi: str | None
    url: str | None
    licence: str | None
    file: str
    characters: int
    passages: int


class SectionOut(BaseModel):
    id: str
    title: str
    number: str | None
    level: int
    kind: str
    start: int
    end: int
    children: list[SectionOut] = Field(default_factory=list)


class DocumentOut(DocumentSummary):
    text: str
    sections: list[SectionOut]
