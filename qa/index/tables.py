"""A build's passages, sentences and documents in one SQLite file, read by row or id (never loaded whole).

The file is written once per build (rows in batches, so a build's memory does not grow with the tables) and
opened read-only and immutable afterwards; each thread gets its own connection (the server reads from
several). Document metadata is small and kept in memory; texts are read by id behind a small LRU.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np

from qa.chunking import Passage
from qa.columns import pwrite_all
from qa.documents import Document, DocumentMeta, document_from_dict, document_to_dict

STORE_FILE = "store.sqlite3"
SENTENCE_VECTORS = (
    "sentences.npy"  # float16, read by row (RowFile); callers take the rows they need as float32
)
PASSAGE_SENTENCES = "passage_sentences.npy"  # passage row -> its sentence rows (int32, -1 padded), mapped
BATCH = 5000  # rows per executemany while writing and per fetch while iterating
DOCUMENT_CACHE = 32  # full documents kept in memory (texts for sentence and merged-passage slices)
SQLITE_VARS = 900  # below SQLite's bound on parameters per statement

_SCHEMA = """
CREATE TABLE passages (row INTEGER PRIMARY KEY, id TEXT NOT NULL, doc_id TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE sentences (row INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, start INTEGER NOT NULL,
    "end" INTEGER NOT NULL, passage_id TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE documents (row INTEGER PRIMARY KEY, id TEXT NOT NULL, meta TEXT NOT NULL, length INTEGER NOT NULL,
    data TEXT NOT NULL);
"""
_INDEXES = """
CREATE INDEX passages_id ON passages (id);
CREATE INDEX passages_doc ON passages (doc_id, start);
CREATE INDEX sentences_span ON sentences (doc_id, start, "end");
CREATE UNIQUE INDEX documents_id ON documents (id);
"""


@dataclass
class Sentence:
    row: int
    doc_id: str
    start: int
    end: int
    passage_id: str
    kind: str


def batches(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def write_store(
    path: Path,
    passages: Iterable[Passage],
    sentences: Iterable[dict[str, object]],
    documents: Iterable[Document],
) -> None:
    """Write the three tables (rows in order, in batches); indexes are made once the rows are in."""
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        for batch in batches(enumerate(passages)):
            db.executemany(
                "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?)",
                [(i, p.id, p.doc_id, p.start, p.end, json.dumps(p.to_dict())) for i, p in batch],
            )
        for batch in batches(enumerate(sentences)):
            db.executemany(
                "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?)",
                [(i, s["doc_id"], s["start"], s["end"], s["passage_id"], s["kind"]) for i, s in batch],
            )
        for batch in batches(enumerate(documents), 100):
            rows = []
            for i, d in batch:
                data = document_to_dict(d)
                meta = data.pop("meta")
                rows.append((i, d.id, json.dumps(meta), len(d.text), json.dumps(data)))
            db.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?)", rows)
        db.executescript(_INDEXES)
        db.commit()
    finally:
        db.close()


class Store:
    """Read-only connections to a build's ``store.sqlite3`` (or another SQLite file of a build whose tables
    include ``table``), one per thread."""

    def __init__(self, path: Path, table: str = "passages") -> None:
        self.path = path
        self._local = threading.local()
        self.execute(f"SELECT 1 FROM {table} LIMIT 1")  # fails now on a missing or foreign file

    @property
    def db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            self._local.db = db
        return db

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, params).fetchall()

    def iterate(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` fetched a batch at a time (memory bounded by the batch)."""
        cursor = self.db.cursor()
        cursor.execute(sql)
        while batch := cursor.fetchmany(BATCH):
            yield from batch


T = TypeVar("T")


def _passage(data: str) -> Passage:
    return Passage.from_dict(json.loads(data))


class RowTable(Sequence[T]):
    """One table of the store as a sequence by row: length, negative rows and slices; a subclass reads a
    row (``_read``) and may read many at once (``rows``)."""

    table: str

    def __init__(self, store: Store) -> None:
        self.store = store
        self._len = int(store.execute(f"SELECT COUNT(*) FROM {self.table}")[0][0])

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, row: int) -> T: ...
    @overload
    def __getitem__(self, row: slice) -> list[T]: ...
    def __getitem__(self, row: int | slice) -> T | list[T]:
        if isinstance(row, slice):
            return self.rows(range(*row.indices(self._len)))
        row = int(row)
        found = self._read(row + self._len if row < 0 else row)
        if found is None:
            raise IndexError(row)
        return found

    def rows(self, rows: Iterable[int]) -> list[T]:
        return [self[r] for r in rows]

    def _read(self, row: int) -> T | None:
        raise NotImplementedError


class Passages(RowTable[Passage]):
    """The passage table by row (``passages[row]``, ``rows([...])``) or id; iteration streams them all."""

    table = "passages"

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._per_document: dict[str, int] | None = None

    def _read(self, row: int) -> Passage | None:
        found = self.store.execute("SELECT data FROM passages WHERE row = ?", (row,))
        return _passage(found[0][0]) if found else None

    def rows(self, rows: Iterable[int]) -> list[Passage]:
        """The passages at ``rows``, in that order (one query per few hundred rows)."""
        wanted = [int(r) for r in rows]
        got: dict[int, Passage] = {}
        for batch in batches(dict.fromkeys(wanted), SQLITE_VARS):
            marks = ",".join("?" * len(batch))
            for row, data in self.store.execute(
                f"SELECT row, data FROM passages WHERE row IN ({marks})", batch
            ):
                got[row] = _passage(data)
        return [got[r] for r in wanted]

    def __iter__(self) -> Iterator[Passage]:
        return (_passage(data) for (data,) in self.store.iterate("SELECT data FROM passages ORDER BY row"))

    def row_of(self, passage_id: str) -> int | None:
        found = self.store.execute(
            "SELECT row FROM passages WHERE id = ? ORDER BY row DESC LIMIT 1", (passage_id,)
        )
        return int(found[0][0]) if found else None

    def document_rows(self, doc_ids: Iterable[str]) -> list[int]:
        """Rows of the passages of ``doc_ids``, ascending."""
        out: list[int] = []
        for batch in batches(dict.fromkeys(doc_ids), SQLITE_VARS):
            marks = ",".join("?" * len(batch))
            out.extend(
                r for (r,) in self.store.execute(f"SELECT row FROM passages WHERE doc_id IN ({marks})", batch)
            )
        return sorted(out)

    def of_document(self, doc_id: str, start: int = 0, end: int | None = None) -> list[Passage]:
        """A document's passages within [start, end], in row order."""
        found = self.store.execute(
            'SELECT data FROM passages WHERE doc_id = ? AND start >= ? AND "end" <= ? ORDER BY row',
            (doc_id, start, end if end is not None else 2**62),
        )
        return [_passage(d) for (d,) in found]

    def count(self, doc_id: str) -> int:
        """How many passages ``doc_id`` has (all documents' counts are read once, on first use)."""
        if self._per_document is None:
            self._per_document = dict(
                self.store.execute("SELECT doc_id, COUNT(*) FROM passages GROUP BY doc_id")
            )
        return self._per_document.get(doc_id, 0)


class Sentences(RowTable[Sentence]):
    """The sentence table by row; ``row_of`` finds a sentence by its document offsets."""

    table = "sentences"

    def _read(self, row: int) -> Sentence | None:
        found = self.store.execute(
            'SELECT row, doc_id, start, "end", passage_id, kind FROM sentences WHERE row = ?', (row,)
        )
        return Sentence(*found[0]) if found else None

    def __iter__(self) -> Iterator[Sentence]:
        sql = 'SELECT row, doc_id, start, "end", passage_id, kind FROM sentences ORDER BY row'
        return (Sentence(*r) for r in self.store.iterate(sql))

    def rows_in(self, doc_id: str, start: int, end: int) -> dict[tuple[int, int], int]:
        """(start, end) -> row of ``doc_id``'s sentences within [start, end]."""
        found = self.store.execute(
            'SELECT start, "end", row FROM sentences WHERE doc_id = ? AND start >= ? AND "end" <= ?',
            (doc_id, start, end),
        )
        return {(s, e): r for s, e, r in found}


class Documents(Mapping[str, Document]):
    """Documents by id: metadata of all in memory, a full document (text, structure) read on demand."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.metas: dict[str, DocumentMeta] = {}
        self.lengths: dict[str, int] = {}
        for doc_id, meta, length in store.execute("SELECT id, meta, length FROM documents ORDER BY row"):
            self.metas[doc_id] = DocumentMeta(**json.loads(meta))
            self.lengths[doc_id] = int(length)
        self._cache: OrderedDict[str, Document] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.metas)

    def __iter__(self) -> Iterator[str]:
        return iter(self.metas)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.metas

    def __getitem__(self, doc_id: str) -> Document:
        with self._lock:
            doc = self._cache.get(doc_id)
            if doc is not None:
                self._cache.move_to_end(doc_id)
                return doc
        if doc_id not in self.metas:
            raise KeyError(doc_id)
        (data,) = self.store.execute("SELECT data FROM documents WHERE id = ?", (doc_id,))[0]
        doc = document_from_dict({"meta": self.metas[doc_id].to_dict(), **json.loads(data)})
        with self._lock:
            self._cache[doc_id] = doc
            while len(self._cache) > DOCUMENT_CACHE:
                self._cache.popitem(last=False)
        return doc


class RowFile:
    """The rows of a 2-D ``.npy`` file, read with ``pread`` as asked for, never mapped.

    A question reads the vectors of a few hundred sentences scattered over the file; through a memory map
    each one faults in the pages around it, which then count in the server's RSS for good (1 GB of a 1.8 GB
    file after 200 questions at 10^6 passages). Read calls leave the pages in the kernel's cache, shared and
    reclaimable, and cost a few microseconds each (a passage's sentences are adjacent rows: one read).
    """

    def __init__(self, path: Path) -> None:
        self._fd = -1
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = header(f)
            self.offset = f.tell()
        if len(shape) != 2 or fortran:
            raise ValueError(f"{path}: not a C-ordered 2-D array")
        self.path = path
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        """The rows at ``rows`` (integers, in any order, repeats allowed), in that order; a slice of
        adjacent rows is one read."""
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step != 1:
                return self[np.arange(start, stop, step)]
            count = max(0, stop - start)
            data = _read(self._fd, count * self._row_bytes, self.offset + start * self._row_bytes, self.path)
            return np.frombuffer(data, dtype=self.dtype).reshape(count, self.shape[1]).copy()
        wanted = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        if wanted.ndim != 1:
            raise IndexError("rows must be a 1-D list of row numbers")
        wanted = np.where(wanted < 0, wanted + self.shape[0], wanted)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= self.shape[0]):
            raise IndexError(f"row out of range for {self.shape[0]} rows")
        unique, back = np.unique(wanted, return_inverse=True)
        out = np.empty((len(unique), self.shape[1]), dtype=self.dtype)
        if len(unique):
            breaks = np.flatnonzero(np.diff(unique) != 1) + 1  # runs of adjacent rows: one read each
            for a, b in zip([0, *breaks.tolist()], [*breaks.tolist(), len(unique)], strict=True):
                size = (b - a) * self._row_bytes
                data = _read(self._fd, size, self.offset + int(unique[a]) * self._row_bytes, self.path)
                out[a:b] = np.frombuffer(data, dtype=self.dtype).reshape(b - a, self.shape[1])
        return out[back]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()


def read_documents(folder: Path) -> list[Document]:
    """Every document of a build (for a library change, which rebuilds from them)."""
    docs = Documents(Store(folder / STORE_FILE))
    return [docs[d] for d in docs]


def _read(fd: int, size: int, offset: int, path: Path) -> bytes:
    """``size`` bytes at ``offset`` (a large read may come back in parts)."""
    parts, got = [], 0
    while got < size:
        data = os.pread(fd, size - got, offset + got)
        if not data:
            raise OSError(f"{path}: short read (the file was truncated)")
        parts.append(data)
        got += len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class RowWriter:
    """A 2-D ``.npy`` file of a known shape, filled a block of rows at a time with ``pwrite`` (never mapped,
    never whole in memory); ``RowFile`` reads it back."""

    def __init__(self, path: Path, shape: tuple[int, int], dtype: Any = np.float32) -> None:
        self._fd = -1
        self.path = path
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            self.offset = f.tell()
            f.truncate(self.offset + self.shape[0] * self._row_bytes)
        self._fd = os.open(path, os.O_WRONLY)

    def write(self, at: int, block: np.ndarray) -> None:
        """``block``'s rows as rows ``at``, ``at + 1``, ... of the file."""
        block = np.ascontiguousarray(block, dtype=self.dtype).reshape(-1, self.shape[1])
        if at < 0 or at + len(block) > self.shape[0]:
            raise IndexError(f"rows {at}..{at + len(block)} out of range for {self.shape[0]} rows")
        if not len(block):  # (a memoryview of no rows cannot be cast)
            return
        pwrite_all(self._fd, block.data, self.offset + at * self._row_bytes)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
