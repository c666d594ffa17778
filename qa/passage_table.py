"""A build's passages as columns of machine integers over their documents' texts, read back as ``Passage``.

A chunked passage is a span of its document: its text is ``doc.text[start:end]``, its id is made from the
document id and the span, and its sentences are spans too. So a build keeps, per passage, a few integers
(document, span, section, kind, tokens, page) and its sentence and reference numbers in flat arrays, and
makes the ``Passage`` when it is read (~3 µs). At 10^6 passages the objects took ~1.1 GB (a text, an id,
a list of tuples each); the columns take ~80 MB (8.2 MB at 10^5). A table over a build's ``DocumentShelf``
holds no document either: it reads a passage's text from its document on the shelf.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import overload

from qa.chunking import Passage, passage_id
from qa.documents import Document
from qa.shelf import DocumentShelf

_NO_PAGE = -1


class PassageTable(Sequence[Passage]):
    """Passages in build order, one document's after another (``add``); ``table[i]`` makes row i's
    ``Passage``. The column readers (``doc_id``, ``passage_id``, ``kind``, ``sentences``, ``span``) make no
    object."""

    def __init__(self, shelf: DocumentShelf | None = None) -> None:
        """Documents added are kept, or with a ``shelf`` (which holds them) only their rows on it."""
        self._shelf = shelf
        self._docs: list[Document] = []  # without a shelf
        self._shelf_rows = array("i")  # with one
        self._doc_ids: list[str] = []
        self._doc_of = array("i")  # passage row -> index into _doc_ids (and _docs or _shelf_rows)
        self._starts, self._ends = array("q"), array("q")
        self._tokens, self._pages = array("i"), array("i")
        self._kind_of, self._kinds = array("b"), list[str]()
        self._section_of = array("i")
        self._sections: list[tuple[str, tuple[str, ...]]] = []  # (section id, titles) as met, each once
        self._section_rows: dict[tuple[str, tuple[str, ...]], int] = {}
        self._spans, self._span_at = array("q"), array("q", [0])  # sentence starts and ends, interleaved
        self._refs, self._ref_at = array("i"), array("q", [0])
        self._doc_rows: dict[str, range] = {}

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
        if doc.id in self._doc_rows:
            raise ValueError(f"the passages of document {doc.id} do not come one after another")
        first = len(self._starts)
        d = len(self._doc_ids)
        if self._shelf is None:
            self._docs.append(doc)
        elif self._shelf.rows.get(doc.id) is None:
            raise ValueError(f"document {doc.id} is not on the table's shelf")
        else:
            self._shelf_rows.append(self._shelf.rows[doc.id])
        self._doc_ids.append(doc.id)
        for p in passages:
            if (
                p.doc_id != doc.id
                or p.id != passage_id(doc.id, p.start, p.end)
                or p.text != doc.text[p.start : p.end]
            ):
                raise ValueError(f"passage {p.id} is not the span {p.start}-{p.end} of document {doc.id}")
            self._doc_of.append(d)
            self._starts.append(p.start)
            self._ends.append(p.end)
            self._tokens.append(p.tokens)
            self._pages.append(_NO_PAGE if p.page is None else p.page)
            self._kind_of.append(self._code(p.kind))
            key = (p.section_id, tuple(p.section))
            row = self._section_rows.get(key)
            if row is None:
                row = self._section_rows[key] = len(self._sections)
                self._sections.append(key)
            self._section_of.append(row)
            for s, e in p.sentences:
                self._spans.extend((s, e))
            self._span_at.append(len(self._spans))
            self._refs.extend(p.refs)
            self._ref_at.append(len(self._refs))
        self._doc_rows[doc.id] = range(first, len(self._starts))

    def _code(self, kind: str) -> int:
        if kind not in self._kinds:
            self._kinds.append(kind)
        return self._kinds.index(kind)

    def __len__(self) -> int:
        return len(self._starts)

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
        return self._docs[d] if self._shelf is None else self._shelf[self._shelf_rows[d]]

    def _passage(self, i: int) -> Passage:
        doc = self._document(self._doc_of[i])
        start, end = self._starts[i], self._ends[i]
        section_id, titles = self._sections[self._section_of[i]]
        page = self._pages[i]
        return Passage(
            id=passage_id(doc.id, start, end),
            doc_id=doc.id,
            section_id=section_id,
            section=list(titles),
            kind=self._kinds[self._kind_of[i]],
            start=start,
            end=end,
            text=doc.text[start:end],
            refs=self._refs[self._ref_at[i] : self._ref_at[i + 1]].tolist(),
            sentences=self.sentences(i),
            tokens=self._tokens[i],
            page=None if page == _NO_PAGE else page,
        )

    def doc_id(self, i: int) -> str:
        return self._doc_ids[self._doc_of[i]]

    def passage_id(self, i: int) -> str:
        return passage_id(self.doc_id(i), self._starts[i], self._ends[i])

    def kind(self, i: int) -> str:
        return self._kinds[self._kind_of[i]]

    def span(self, i: int) -> tuple[int, int]:
        return self._starts[i], self._ends[i]

    def sentences(self, i: int) -> list[tuple[int, int]]:
        """Row i's sentence spans (absolute offsets into its document)."""
        flat = self._spans[self._span_at[i] : self._span_at[i + 1]]
        return list(zip(flat[::2], flat[1::2], strict=True))

    def rows_of(self, doc_id: str) -> range:
        """The rows of ``doc_id``'s passages (empty for a document with none)."""
        return self._doc_rows.get(doc_id, range(0))


# Reading any sequence of passages without making a Passage per row where it is a table (a list of Passage
# objects, as tests and older callers give, is read as it is).


def sentence_spans(passages: Sequence[Passage]) -> Iterator[tuple[str, list[tuple[int, int]]]]:
    """Each passage's document id and sentence spans, in row order."""
    if isinstance(passages, PassageTable):
        return ((passages.doc_id(i), passages.sentences(i)) for i in range(len(passages)))
    return ((p.doc_id, p.sentences) for p in passages)


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
