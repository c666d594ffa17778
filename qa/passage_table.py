"""A build's passages as columns of machine integers over their documents' texts, read back as ``Passage``.

A chunked passage is a span of its document: its text is ``doc.text[start:end]``, its id is made from the
document id and the span, and its sentences are spans too. So a build keeps, per passage, a few integers
(document, span, section, kind, tokens, page) and its sentence and reference numbers in flat arrays, and
makes the ``Passage`` when it is read (~3 µs). At 10^6 passages the objects took ~1.1 GB (a text, an id,
a list of tuples each); the columns take ~80 MB (8.2 MB at 10^5). A table over a build's ``DocumentShelf``
holds no document either: it reads a passage's text from its document on the shelf, and its columns are
spilled to scratch files beside the shelf's (``qa.columns``), so memory holds a buffer of each; its
documents' ids are a ``KeyRows`` (``qa.keys``), their first rows and shelf rows columns too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, overload

from qa.chunking import Passage, passage_id
from qa.columns import Column
from qa.documents import Document
from qa.keys import KeyRows
from qa.shelf import DocumentShelf

_NO_PAGE = -1


class _Columns(NamedTuple):
    """A table's per-passage columns (``Column``), or their views (``qa.columns.View``), by name."""

    doc_of: Any  # passage row -> the table's document number (its row in _ids, _firsts, _docs or _shelf_rows)
    starts: Any
    ends: Any
    tokens: Any
    pages: Any
    kind_of: Any
    section_of: Any
    spans: Any  # sentence starts and ends, interleaved; row i's: spans[span_at[i]:span_at[i + 1]]
    span_at: Any
    refs: Any  # reference numbers; row i's: refs[ref_at[i]:ref_at[i + 1]]
    ref_at: Any


_CODES = ("i", "q", "q", "i", "i", "b", "i", "q", "q", "i", "q")  # the array type of each of _Columns


class PassageTable(Sequence[Passage]):
    """Passages in build order, one document's after another (``add``); ``table[i]`` makes row i's
    ``Passage``. The column readers (``doc_id``, ``passage_id``, ``kind``, ``sentences``, ``span``) make no
    object."""

    def __init__(self, shelf: DocumentShelf | None = None) -> None:
        """Documents added are kept, or with a ``shelf`` (which holds them) only their rows on it; a table over
        a shelf spills its per-passage columns to scratch files in the shelf's folder (``qa.columns``)."""
        self._shelf = shelf
        self._docs: list[Document] = []  # without a shelf
        self._kinds: list[str] = []
        self._sections: list[tuple[str, tuple[str, ...]]] = []  # (section id, titles) as met, each once
        self._section_rows: dict[tuple[str, tuple[str, ...]], int] = {}
        spill, folder = shelf is not None, shelf.folder if shelf is not None else None
        self._ids = KeyRows(spill=spill, folder=folder)  # document number -> id (and back)
        self._firsts = Column("q", spill=spill, folder=folder)  # document number -> its first passage row
        self._shelf_rows = Column("i", spill=spill, folder=folder)  # document number -> its row on the shelf
        self._columns = _Columns(*(Column(code, spill=spill, folder=folder) for code in _CODES))
        self._columns.span_at.append(0)
        self._columns.ref_at.append(0)
        self._views: _Columns | None = None  # the columns' views, until the next add
        self._shelf_view: Any = None  # _shelf_rows's, until the next add

    @property
    def folder(self) -> Path | None:
        """The folder of the table's scratch files (its shelf's), where a table built from it may spill."""
        return self._shelf.folder if self._shelf is not None else None

    @property
    def spilled(self) -> bool:
        return self._shelf is not None

    @classmethod
    def of(cls, documents: Iterable[Document], passages: Iterable[Passage]) -> PassageTable:
        """The table of ``passages`` (each document's together, in ``documents``' order or any other)."""
        by_id = {d.id: d for d in documents}
        table = cls()
        group: list[Passage] = []
        for p in passages:
            if group and p.doc_id != group[0].doc_id:
                table.add(by_id[group[0].doc_id], group)
                group = []
            group.append(p)
        if group:
            table.add(by_id[group[0].doc_id], group)
        return table

    def add(self, doc: Document, passages: Iterable[Passage]) -> None:
        """Append ``doc``'s passages (as ``chunk_document`` made them: spans of its text)."""
        if doc.id in self._ids:
            raise ValueError(f"the passages of document {doc.id} do not come one after another")
        c = self._columns
        d = self._ids.rows
        shelf_row = None if self._shelf is None else self._shelf.rows.get(doc.id)
        if self._shelf is None:
            self._docs.append(doc)
        elif shelf_row is None:
            raise ValueError(f"document {doc.id} is not on the table's shelf")
        else:
            self._shelf_rows.append(shelf_row)
            self._shelf_view = None
        self._ids.append(doc.id)
        self._firsts.append(len(c.starts))
        self._views = None
        rows = _Columns(*([] for _ in _CODES))  # the document's items, put in each column at once
        spans_at, refs_at = len(c.spans), len(c.refs)
        for p in passages:
            if (
                p.doc_id != doc.id
                or p.id != passage_id(doc.id, p.start, p.end)
                or p.text != doc.text[p.start : p.end]
            ):
                raise ValueError(f"passage {p.id} is not the span {p.start}-{p.end} of document {doc.id}")
            rows.doc_of.append(d)
            rows.starts.append(p.start)
            rows.ends.append(p.end)
            rows.tokens.append(p.tokens)
            rows.pages.append(_NO_PAGE if p.page is None else p.page)
            rows.kind_of.append(self._code(p.kind))
            key = (p.section_id, tuple(p.section))
            row = self._section_rows.get(key)
            if row is None:
                row = self._section_rows[key] = len(self._sections)
                self._sections.append(key)
            rows.section_of.append(row)
            for s, e in p.sentences:
                rows.spans.extend((s, e))
            rows.span_at.append(spans_at + len(rows.spans))
            rows.refs.extend(p.refs)
            rows.ref_at.append(refs_at + len(rows.refs))
        for column, items in zip(c, rows, strict=True):
            column.extend(items)

    def _read(self) -> _Columns:
        """The columns' views (opened once after the last ``add``: a spilled column writes out its buffer)."""
        views = self._views
        if views is None:
            views = self._views = _Columns(*(col.view() for col in self._columns))
        return views

    def _code(self, kind: str) -> int:
        if kind not in self._kinds:
            self._kinds.append(kind)
        return self._kinds.index(kind)

    def __len__(self) -> int:
        return len(self._columns.starts)

    @overload
    def __getitem__(self, i: int) -> Passage: ...

    @overload
    def __getitem__(self, i: slice) -> list[Passage]: ...

    def __getitem__(self, i: int | slice) -> Passage | list[Passage]:
        if isinstance(i, slice):
            return [self._passage(r) for r in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"passage row {i} out of range ({len(self)} passages)")
        return self._passage(i)

    def __iter__(self) -> Iterator[Passage]:
        return (self._passage(i) for i in range(len(self)))

    def _document(self, d: int) -> Document:
        if self._shelf is None:
            return self._docs[d]
        view = self._shelf_view
        if view is None:
            view = self._shelf_view = self._shelf_rows.view()
        return self._shelf[view[d]]

    def document(self, i: int) -> Document:
        """Row i's document (read from the shelf, for a table over one)."""
        return self._document(self._read().doc_of[i])

    def _passage(self, i: int) -> Passage:
        c = self._read()
        doc = self._document(c.doc_of[i])
        start, end = c.starts[i], c.ends[i]
        section_id, titles = self._sections[c.section_of[i]]
        page = c.pages[i]
        return Passage(
            id=passage_id(doc.id, start, end),
            doc_id=doc.id,
            section_id=section_id,
            section=list(titles),
            kind=self._kinds[c.kind_of[i]],
            start=start,
            end=end,
            text=doc.text[start:end],
            refs=c.refs[c.ref_at[i] : c.ref_at[i + 1]].tolist(),
            sentences=self.sentences(i),
            tokens=c.tokens[i],
            page=None if page == _NO_PAGE else page,
        )

    def doc_id(self, i: int) -> str:
        return self._ids.key(self._read().doc_of[i])

    def passage_id(self, i: int) -> str:
        c = self._read()
        return passage_id(self._ids.key(c.doc_of[i]), c.starts[i], c.ends[i])

    def kind(self, i: int) -> str:
        return self._kinds[self._read().kind_of[i]]

    def span(self, i: int) -> tuple[int, int]:
        c = self._read()
        return c.starts[i], c.ends[i]

    def sentences(self, i: int) -> list[tuple[int, int]]:
        """Row i's sentence spans (absolute offsets into its document)."""
        c = self._read()
        flat = c.spans[c.span_at[i] : c.span_at[i + 1]].tolist()
        return list(zip(flat[::2], flat[1::2], strict=True))

    def rows_of(self, doc_id: str) -> range:
        """The rows of ``doc_id``'s passages (empty for a document with none)."""
        d = self._ids.get(doc_id)
        if d is None:
            return range(0)
        first = self._firsts.items(d, d + 2)
        return range(first[0], first[1] if len(first) > 1 else len(self))


# Reading any sequence of passages without making a Passage per row where it is a table (a list of Passage
# objects, as tests and older callers give, is read as it is).


def sentence_spans(passages: Sequence[Passage]) -> Iterator[tuple[str, list[tuple[int, int]]]]:
    """Each passage's document id and sentence spans, in row order."""
    if isinstance(passages, PassageTable):
        return ((passages.doc_id(i), passages.sentences(i)) for i in range(len(passages)))
    return ((p.doc_id, p.sentences) for p in passages)


def doc_id_of(passages: Sequence[Passage], i: int) -> str:
    """Row i's document id."""
    if isinstance(passages, PassageTable):
        return passages.doc_id(i)
    return passages[i].doc_id


def id_and_kind(passages: Sequence[Passage], i: int) -> tuple[str, str]:
    """Row i's passage id and kind."""
    if isinstance(passages, PassageTable):
        return passages.passage_id(i), passages.kind(i)
    return passages[i].id, passages[i].kind


def document_rows(passages: Sequence[Passage]) -> Callable[[str], Sequence[int]]:
    """A document id's passage rows (none for a document without passages)."""
    if isinstance(passages, PassageTable):
        return passages.rows_of
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(passages):
        rows.setdefault(p.doc_id, []).append(i)
    return lambda doc_id: rows.get(doc_id, [])
