"""A build's documents on disk instead of in memory: each pickled into one unnamed scratch file as it is read,
read back by row and kept for the last few (``DocumentShelf``, a ``Sequence[Document]``).

A full build reads every document several times (chunking, the sentence texts, the facts step's passes,
the store); holding them all costs their texts and structure for the whole build: ~10^4 documents at 10^6
passages, ~10^6 at PubMed Central's ~10^8. The shelf holds each document's offset in the file, and its id
in a ``KeyRows`` (``qa.keys``: the ids' bytes in scratch files, a table of their hashes mapped from one).

The file has no name (``tempfile.TemporaryFile``: unlinked at once), so a killed build leaves nothing behind;
rows are read with ``os.pread``, which needs no shared file position, so threads and a forked child (the
build steps' process) read it side by side.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import overload

from qa.columns import Column, pwrite_all
from qa.documents import Document
from qa.keys import KeyRows


class DocumentShelf(Sequence[Document]):
    """Documents appended in order (``append``), read back by row (``shelf[i]``) or id (``get``)."""

    KEEP = 32  # documents kept decoded, most recently read last

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder  # where its file is (and other scratch files of the build may go)
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".documents-")  # noqa: SIM115 (closed by close)
        self._offsets = Column("q", spill=True, folder=folder)  # row i's bytes: offsets[i]:offsets[i + 1]
        self._offsets.append(0)
        self._end = 0
        self.rows = KeyRows(spill=True, folder=folder)  # each id's first row; row i's id: rows.key(i)
        self._kept: OrderedDict[int, Document] = OrderedDict()
        self._lock, self._pid = threading.Lock(), os.getpid()

    def append(self, doc: Document) -> None:
        data = pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)
        at = pwrite_all(self._file.fileno(), data, self._end)
        self.rows.append(doc.id)  # (a corpus refuses repeated ids once all are read: ``repeated_ids``)
        self._end = at
        self._offsets.append(at)

    def id_of(self, row: int) -> str:
        """Row ``row``'s document id (no document read)."""
        return self.rows.key(row)

    def __len__(self) -> int:
        return self.rows.rows

    @overload
    def __getitem__(self, i: int) -> Document: ...

    @overload
    def __getitem__(self, i: slice) -> list[Document]: ...

    def __getitem__(self, i: int | slice) -> Document | list[Document]:
        if isinstance(i, slice):
            return [self._read(r) for r in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"document row {i} out of range ({len(self)} documents)")
        return self._read(i)

    def __iter__(self) -> Iterator[Document]:
        return (self._read(i) for i in range(len(self)))

    def get(self, doc_id: str) -> Document | None:
        row = self.rows.get(doc_id)
        return None if row is None else self._read(row)

    def _read(self, row: int) -> Document:
        if self._pid != os.getpid():  # a forked child: the parent's lock may have been held at the fork
            self._lock, self._pid = threading.Lock(), os.getpid()
        with self._lock:
            doc = self._kept.get(row)
            if doc is not None:
                self._kept.move_to_end(row)
                return doc
        start, end = self._offsets.items(row, row + 2)
        data = os.pread(self._file.fileno(), end - start, start)
        if len(data) != end - start:
            raise OSError(f"the document shelf's row {row} is cut short ({len(data)} of {end - start} bytes)")
        doc = pickle.loads(data)  # noqa: S301 (this process wrote it, to a file nobody else can name)
        with self._lock:
            self._kept[row] = doc
            if len(self._kept) > self.KEEP:
                self._kept.popitem(last=False)
        return doc

    @property
    def nbytes(self) -> int:
        """Bytes of pickled documents in the file."""
        return self._end

    def close(self) -> None:
        self._kept.clear()
        self._file.close()
        self._offsets.close()
        self.rows.close()


def rows_by_id(documents: Sequence[Document]) -> Mapping[str, int]:
    """Each document's row in ``documents`` by its id (a shelf's without reading a document)."""
    if isinstance(documents, DocumentShelf):
        return documents.rows
    return {d.id: i for i, d in enumerate(documents)}


def repeated_ids(documents: Sequence[Document]) -> list[str]:
    """The ids that more than one of the documents has, sorted (a shelf's without reading a document)."""
    if isinstance(documents, DocumentShelf):
        return sorted(documents.rows.repeated)
    return sorted(i for i, n in Counter(d.id for d in documents).items() if n > 1)
