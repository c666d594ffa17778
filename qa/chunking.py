"""Passages: consecutive sentences of one section, sized in the model's own word pieces, offsets exact."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from qa.documents import Document, reference_numbers
from qa.sentences import split_sentences

TokenCounter = Callable[[list[str]], list[int]]


@dataclass
class Passage:
    id: str
    doc_id: str
    section_id: str
    section: list[str]  # titles from the top-level section down
    kind: str  # body | caption | table
    start: int
    end: int
    text: str
    refs: list[int] = field(default_factory=list)
    sentences: list[tuple[int, int]] = field(default_factory=list)  # absolute offsets into the document
    tokens: int = 0
    page: int | None = None  # 1-based page of ``start`` (paged formats such as PDF), else None

    @property
    def embed_text(self) -> str:
        return embed_text(self.section[-1] if self.section else "", self.text)

    @property
    def keyword_text(self) -> str:
        """What BM25 indexes for a passage (in the product index and the benchmark's alike): its section
        title, then its text."""
        return f"{' '.join(self.section[-1:])} {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Passage:
        data = dict(data)
        data["sentences"] = [tuple(s) for s in data.get("sentences", [])]
        return cls(**data)


def embed_text(title: str, text: str) -> str:
    """What the model sees for a passage: its section title as context, then the text."""
    return f"{title}: {text}" if title else text


def passage_id(doc_id: str, start: int, end: int) -> str:
    return f"{doc_id}:{start}-{end}"


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int


def _units(doc: Document, start: int, end: int, kind: str) -> list[tuple[int, int]]:
    """Sentences of a block; for table text each line is a unit (rows, not prose)."""
    if kind == "table":
        out = []
        for m in re.finditer(r"[^\n]+", doc.text[start:end]):
            s, e = start + m.start(), start + m.end()
            if doc.text[s:e].strip():
                stripped = doc.text[s:e]
                s += len(stripped) - len(stripped.lstrip())
                e -= len(stripped) - len(stripped.rstrip())
                out.append((s, e))
        return out
    return split_sentences(doc.text, start, end)


def _split_long(doc: Document, unit: tuple[int, int], budget: int, count: TokenCounter) -> list[_Unit]:
    """Cut a sentence longer than the budget at word boundaries."""
    words = [
        (m.start() + unit[0], m.end() + unit[0]) for m in re.finditer(r"\S+", doc.text[unit[0] : unit[1]])
    ]
    pieces: list[_Unit] = []
    i = 0
    while i < len(words):
        lo, hi = i, len(words)
        while hi - lo > 1:  # largest j such that words[i:j] fits
            mid = (lo + hi + 1) // 2
            n = count([doc.text[words[i][0] : words[mid - 1][1]]])[0]
            if n <= budget:
                lo = mid
            else:
                hi = mid - 1
        j = max(lo, i + 1)
        s, e = words[i][0], words[j - 1][1]
        pieces.append(_Unit(s, e, count([doc.text[s:e]])[0]))
        i = j
    return pieces


def chunk_document(doc: Document, count: TokenCounter, *, max_tokens: int, overlap: int) -> list[Passage]:
    """Group each section's sentences into passages of at most ``max_tokens`` word pieces (prefix included)."""
    passages: list[Passage] = []
    sections = doc.section_index()
    groups: list[tuple[str, str, list[tuple[int, int]]]] = []  # (section_id, kind, units)
    for block in doc.blocks:
        if block.kind in ("heading", "reference"):  # reference lists are kept, never retrieved
            continue
        block_units = _units(doc, block.start, block.end, block.kind)
        if (
            groups
            and groups[-1][0] == block.section_id
            and groups[-1][1] == block.kind
            and block.kind != "caption"
        ):
            groups[-1][2].extend(block_units)
        else:
            groups.append((block.section_id, block.kind, list(block_units)))
    if not groups:  # headings and nothing else (a title on its own): their text is the passage, not lost
        for block in doc.blocks:
            if block.kind == "heading":
                groups.append((block.section_id, "body", list(_units(doc, block.start, block.end, "body"))))

    for section_id, kind, spans in groups:
        path = doc.section_path(section_id)
        title = sections[section_id].title if section_id in sections else ""
        prefix_tokens = count([embed_text(title, "x")])[0] - count(["x"])[0]
        budget = max_tokens - prefix_tokens
        counts = count([doc.text[s:e] for s, e in spans])
        units: list[_Unit] = []
        for (s, e), n in zip(spans, counts, strict=True):
            units.extend(_split_long(doc, (s, e), budget, count) if n > budget else [_Unit(s, e, n)])
        step_overlap = overlap if kind == "body" else 0
        i = 0
        while i < len(units):
            j, total = i, 0
            # special tokens ([CLS]/[SEP]) are counted once per passage: subtract 2 per extra unit
            while j < len(units) and total + units[j].tokens - (2 if j > i else 0) <= budget:
                total += units[j].tokens - (2 if j > i else 0)
                j += 1
            j = max(j, i + 1)
            chosen = units[i:j]
            start, end = chosen[0].start, chosen[-1].end
            text = doc.text[start:end]
            exact = count([embed_text(title, text)])[0]
            while exact > max_tokens and len(chosen) > 1:  # the estimate was short: drop a sentence
                chosen = chosen[:-1]
                j -= 1
                end = chosen[-1].end
                text = doc.text[start:end]
                exact = count([embed_text(title, text)])[0]
            passages.append(
                Passage(
                    id=passage_id(doc.id, start, end),
                    doc_id=doc.id,
                    section_id=section_id,
                    section=path,
                    kind=kind,
                    start=start,
                    end=end,
                    text=text,
                    refs=reference_numbers(text),
                    sentences=[(u.start, u.end) for u in chosen],
                    tokens=exact,
                    page=doc.page_at(start),
                )
            )
            if j >= len(units):
                break
            i = max(j - step_overlap, i + 1)
    return passages
