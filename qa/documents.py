"""The document model shared by readers, chunking, facts and the web: documents, sections and blocks."""

from __future__ import annotations

import bisect
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

BlockKind = Literal["heading", "body", "caption", "table", "reference"]  # reference: never retrieved

# In-text citation markers: "(82)", "(2–5)", "(2, 6, 7)", "(65–67)". Not "(22/37)" or "(18.9%)".
_NUM = r"\d{1,3}(?:\s*[–-]\s*\d{1,3})?"
REF_MARKER = re.compile(rf"\((?P<refs>{_NUM}(?:\s*[,;]\s*{_NUM})*)\)")


@dataclass(slots=True)  # a document has hundreds: no __dict__ each
class Block:
    """A paragraph-level unit of the source text: ``source[start:end]`` is its text."""

    kind: BlockKind
    start: int
    end: int
    section_id: str


@dataclass
class Section:
    id: str
    title: str
    level: int
    start: int
    end: int
    number: str | None = None
    kind: Literal["section", "abstract", "table", "references", "back"] = "section"  # back: back matter
    children: list[Section] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "number": self.number,
            "level": self.level,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "children": [c.to_dict() for c in self.children],
        }


@dataclass
class DocumentMeta:
    id: str
    file: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    journal: str | None = None
    year: int | None = None
    doi: str | None = None
    url: str | None = None
    licence: str | None = None
    description: str | None = None
    pmcid: str | None = None
    pmid: str | None = None

    @property
    def display_title(self) -> str:
        return self.title or self.id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reference:
    """One entry of the paper's reference list; ``number`` is what in-text markers cite."""

    number: int | None
    label: str
    text: str
    start: int | None = None  # offsets of the entry in the document text, when it is there
    end: int | None = None
    doi: str | None = None
    pmid: str | None = None


@dataclass
class Document:
    meta: DocumentMeta
    text: str
    blocks: list[Block]
    sections: list[Section]  # top-level sections; each holds its children
    sha256: str
    pages: list[int] = field(default_factory=list)  # offset where each page starts (paged formats only)
    references: list[Reference] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.meta.id

    def page_at(self, offset: int) -> int | None:
        """1-based page holding ``offset``, or None for documents without pages."""
        if not self.pages:
            return None
        return max(1, bisect.bisect_right(self.pages, offset))

    def reference(self, number: int) -> Reference | None:
        return next((r for r in self.references if r.number == number), None)

    def section_index(self) -> dict[str, Section]:
        out: dict[str, Section] = {}
        stack = list(self.sections)
        while stack:
            s = stack.pop()
            out[s.id] = s
            stack.extend(s.children)
        return out

    def section_path(self, section_id: str) -> list[str]:
        """Titles from the top-level section down to ``section_id``."""

        def walk(nodes: list[Section], trail: list[str]) -> list[str] | None:
            for node in nodes:
                here = [*trail, node.title]
                if node.id == section_id:
                    return here
                found = walk(node.children, here)
                if found:
                    return found
            return None

        return walk(self.sections, []) or []


def reference_numbers(text: str) -> list[int]:
    """The paper's own reference numbers cited in ``text``, ranges expanded, in order, unique."""
    seen: dict[int, None] = {}
    for match in REF_MARKER.finditer(text):
        for part in re.split(r"\s*[,;]\s*", match.group("refs")):
            bounds = [int(x) for x in re.split(r"\s*[–-]\s*", part)]
            lo, hi = bounds[0], bounds[-1]
            if hi < lo or hi - lo > 50:
                hi = lo
            for n in range(lo, hi + 1):
                seen.setdefault(n, None)
    return list(seen)


def section_from_dict(data: dict[str, Any]) -> Section:
    return Section(
        id=data["id"],
        title=data["title"],
        level=data["level"],
        start=data["start"],
        end=data["end"],
        number=data.get("number"),
        kind=data.get("kind", "section"),
        children=[section_from_dict(c) for c in data.get("children", [])],
    )


def document_to_dict(doc: Document) -> dict[str, Any]:
    return {
        "meta": doc.meta.to_dict(),
        "text": doc.text,
        "sha256": doc.sha256,
        "sections": [s.to_dict() for s in doc.sections],
        "blocks": [asdict(b) for b in doc.blocks],
        "pages": doc.pages,
        "references": [asdict(r) for r in doc.references],
    }


def document_from_dict(data: dict[str, Any]) -> Document:
    return Document(
        meta=DocumentMeta(**data["meta"]),
        text=data["text"],
        blocks=[Block(**b) for b in data["blocks"]],
        sections=[section_from_dict(s) for s in data["sections"]],
        sha256=data["sha256"],
        pages=list(data.get("pages", [])),
        references=[Reference(**r) for r in data.get("references", [])],
    )
