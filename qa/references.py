"""Figure, table and section references in a question ("panel A of Figure 1", "section 3.1"), resolved to the
passages they name: captions and tables by their label, body passages by their section's number."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.chunking import Passage

_ASKED = re.compile(r"\b(fig(?:ure)?s?\.?|tables?|sections?)\s*(\d+(?:\.\d+)*)", re.IGNORECASE)
_LABEL = re.compile(r"^\s*(fig(?:ure)?\.?|table)\s*(\d+)", re.IGNORECASE)
_NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")
REFERENCES_FILE = "references.json"  # a build's map, written with its indexes


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

    @classmethod
    def for_index(cls, index: Any) -> ReferenceMap:
        """The build's own map (``references.json``, read in one go); an index without one (builds made
        before it, an in-memory index) is mapped from its passages, one pass over all of them."""
        path = getattr(index, "path", None)
        if path is not None and (Path(path) / REFERENCES_FILE).exists():
            return cls.load(Path(path) / REFERENCES_FILE)
        return cls.from_passages(index.passages)

    def save(self, path: Path) -> None:
        rows = [[kind, label, rows] for (kind, label), rows in sorted(self.rows.items())]
        path.write_text(json.dumps(rows, separators=(",", ":")), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ReferenceMap:
        return cls(
            {(kind, label): rows for kind, label, rows in json.loads(path.read_text(encoding="utf-8"))}
        )

    def find(self, question: str) -> list[int]:
        """Rows of the passages the question refers to (none when it names no figure, table or section)."""
        if not self.rows:
            return []
        found: list[int] = []
        for m in _ASKED.finditer(question):
            found.extend(self.rows.get((_kind(m.group(1)), m.group(2)), []))
        return found
