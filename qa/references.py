"""Figure, table and section references in a question ("panel A of Figure 1", "section 3.1"), resolved to the
passages they name: captions and tables by their label, body passages by their section's number."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from qa.chunking import Passage

_ASKED = re.compile(r"\b(fig(?:ure)?s?\.?|tables?|sections?)\s*(\d+(?:\.\d+)*)", re.IGNORECASE)
_LABEL = re.compile(r"^\s*(fig(?:ure)?\.?|table)\s*(\d+)", re.IGNORECASE)
_NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")


def _kind(word: str) -> str:
    w = word.lower()
    return "table" if w.startswith("table") else "section" if w.startswith("section") else "figure"


@dataclass
class ReferenceMap:
    """(kind, number) -> passage rows: ("figure", "1"), ("table", "2"), ("section", "3.1")."""

    rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    @classmethod
    def from_passages(cls, passages: Iterable[Passage]) -> ReferenceMap:
        out: dict[tuple[str, str], list[int]] = {}
        label: tuple[str, str] | None = None  # a caption split over passages: the rest keep its label
        previous: Passage | None = None
        for row, p in enumerate(passages):
            if p.kind in ("caption", "table"):
                m = _LABEL.match(p.text) or (_LABEL.match(p.section[-1]) if p.section else None)
                if m:
                    label = (_kind(m.group(1)), m.group(2))
                elif not (previous and previous.kind == p.kind and previous.doc_id == p.doc_id):
                    label = None
                if label:
                    out.setdefault(label, []).append(row)
            for title in p.section:
                n = _NUMBERED.match(title)
                if n:
                    out.setdefault(("section", n.group(1)), []).append(row)
            previous = p
        return cls({k: sorted(set(v)) for k, v in out.items()})

    def find(self, question: str) -> list[int]:
        """Rows of the passages the question refers to (none when it names no figure, table or section)."""
        if not self.rows:
            return []
        found: list[int] = []
        for m in _ASKED.finditer(question):
            found.extend(self.rows.get((_kind(m.group(1)), m.group(2)), []))
        return found
