"""Figure, table and section references in a question ("panel A of Figure 1", "section 3.1"), resolved to the
passages they name: captions and tables by their label, body passages by their section's number."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.chunking import Passage
from qa.index.tables import SQLITE_VARS, Store, batches

_ASKED = re.compile(r"\b(fig(?:ure)?s?\.?|tables?|sections?)\s*(\d+(?:\.\d+)*)", re.IGNORECASE)
_LABEL = re.compile(r"^\s*(fig(?:ure)?\.?|table)\s*(\d+)", re.IGNORECASE)
_NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")
REFERENCES_DB = "references.sqlite3"  # a build's map, written with its indexes
REFERENCES_FILE = "references.json"  # the map of builds made before it (read whole)


def _kind(word: str) -> str:
    w = word.lower()
    return "table" if w.startswith("table") else "section" if w.startswith("section") else "figure"


ALL_ROWS = 64  # a reference naming at most this many passages brings them all in (see ``find``)


def labels_asked(question: str) -> list[tuple[str, str]]:
    """The (kind, number) of each figure, table or section reference in ``question``, in order."""
    return [(_kind(m.group(1)), m.group(2)) for m in _ASKED.finditer(question)]


def _entries(passages: Iterable[Passage]) -> Iterator[tuple[str, str, int]]:
    """(kind, number, passage row) of every reference a passage answers to, in row order."""
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
                yield (*label, row)
        for title in p.section:
            n = _NUMBERED.match(title)
            if n:
                yield ("section", n.group(1), row)
        previous = p


def _chosen(rows: list[int], among: Collection[int] | None) -> list[int]:
    """A label's rows as ``find`` takes them: all of a few, or of many those ``among`` the candidates."""
    if len(rows) <= ALL_ROWS:
        return rows
    if not among:
        return []
    wanted = set(among)
    return [r for r in rows if r in wanted]


@dataclass
class ReferenceMap:
    """(kind, number) -> passage rows: ("figure", "1"), ("table", "2"), ("section", "3.1"), in memory (an
    index built in memory, a build made before ``references.sqlite3``)."""

    rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    @classmethod
    def from_passages(cls, passages: Iterable[Passage]) -> ReferenceMap:
        out: dict[tuple[str, str], list[int]] = {}
        for kind, label, row in _entries(passages):
            out.setdefault((kind, label), []).append(row)
        return cls({k: sorted(set(v)) for k, v in out.items()})

    @classmethod
    def for_index(cls, index: Any) -> ReferenceMap | StoredReferences:
        """The build's own map (``references.sqlite3``, read by label; or an older build's
        ``references.json``, read in one go); an index without one (an in-memory index) is mapped from its
        passages, one pass over all of them."""
        path = getattr(index, "path", None)
        if path is not None and (Path(path) / REFERENCES_DB).exists():
            return StoredReferences(Path(path) / REFERENCES_DB)
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

    def find(self, question: str, among: Collection[int] | None = None) -> list[int]:
        """Rows of the passages the question refers to (none when it names no figure, table or section).

        A reference naming more than ``ALL_ROWS`` passages (a library's "Figure 1" or "section 2": one in
        every paper) gives only its rows ``among`` the given ones (the question's candidates, or the named
        papers' passages); every row of it would cost a vector each and single out no passage."""
        if not self.rows:
            return []
        found: list[int] = []
        for key in labels_asked(question):
            found.extend(_chosen(self.rows.get(key, []), among))
        return found


class StoredReferences:
    """A build's reference map in SQLite (``references.sqlite3``), read a label at a time: never whole in
    memory (a numbered section's title names each of its passages: ~1.7 entries a passage over review
    articles, so ~10^8 over PubMed Central's passages)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store = Store(path, table="refs")

    @staticmethod
    def write(passages: Iterable[Passage], path: Path) -> None:
        """The map of ``passages`` written to ``path``, a batch of entries at a time."""
        path.unlink(missing_ok=True)
        db = sqlite3.connect(path)
        try:
            db.executescript(
                "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; CREATE TABLE refs (kind TEXT NOT NULL, "
                "label TEXT NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (kind, label, row)) WITHOUT ROWID;"
            )
            for batch in batches(_entries(passages)):
                db.executemany("INSERT OR IGNORE INTO refs VALUES (?, ?, ?)", batch)
            db.commit()
        finally:
            db.close()

    @property
    def rows(self) -> dict[tuple[str, str], list[int]]:
        """The whole map (as ``ReferenceMap.rows``), read at once: for tests and small builds."""
        out: dict[tuple[str, str], list[int]] = {}
        for kind, label, row in self._store.iterate(
            "SELECT kind, label, row FROM refs ORDER BY kind, label, row"
        ):
            out.setdefault((kind, label), []).append(row)
        return out

    def find(self, question: str, among: Collection[int] | None = None) -> list[int]:
        """As ``ReferenceMap.find``: one indexed read per reference (at most ``ALL_ROWS + 1`` rows, or the
        label's rows among ``among``)."""
        found: list[int] = []
        for kind, label in labels_asked(question):
            rows = [
                r
                for (r,) in self._store.execute(
                    "SELECT row FROM refs WHERE kind = ? AND label = ? ORDER BY row LIMIT ?",
                    (kind, label, ALL_ROWS + 1),
                )
            ]
            if len(rows) <= ALL_ROWS:
                found.extend(rows)
                continue
            for batch in batches(sorted(set(among or ())), SQLITE_VARS):
                marks = ",".join("?" * len(batch))
                found.extend(
                    r
                    for (r,) in self._store.execute(
                        f"SELECT row FROM refs WHERE kind = ? AND label = ? AND row IN ({marks}) ORDER BY row",
                        (kind, label, *batch),
                    )
                )
        return found
