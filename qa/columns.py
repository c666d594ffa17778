"""Append-only columns of machine integers, held in memory or spilled to an unnamed scratch file.

A build keeps a few integers per passage and per sentence (spans, owners, sentence rows): ~160 bytes a
passage over the passage and sentence tables, so ~16 GB at PubMed Central's ~10^8 passages. A spilled
column (``Column(code, spill=True)``) holds at most ``BUFFER`` items in memory; the rest go to a scratch
file and are read back through a shared memory map, whose pages are the kernel's file cache (dropped and
read again as memory is needed), not the process's heap. Without ``spill`` a column is a plain ``array``.

Items are appended by one thread; ``view()`` then gives everything appended so far as one indexable,
sliceable sequence of ints (the ``array`` itself, or a ``memoryview`` over the map; a slice's ``tolist()``
gives its ints), which any thread may read. The file has no name (``tempfile.TemporaryFile``), so a killed build leaves nothing behind, and a
forked child (the build steps' process) reads the same pages.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import threading
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeAlias

import numpy as np

View: TypeAlias = "array[int] | memoryview[int]"  # ints by index; a slice's tolist() gives a list of them


class Column:
    """Integers of one ``array`` type code, appended (``append``, ``extend``) and read through ``view()``."""

    BUFFER = 1 << 16  # items held in memory before a spilled column writes them out

    def __init__(self, code: str, *, spill: bool = False, folder: Path | None = None) -> None:
        self.code = code
        self._tail = array(code)  # items not in the file (all of them, unspilled)
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".column-") if spill else None  # noqa: SIM115
        self._written = 0  # items in the file
        self._view: View | None = None  # over every item, until the next append
        self._lock = threading.RLock()  # (view opens under it, and opening writes the buffer out under it)

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def append(self, item: int) -> None:
        self._tail.append(item)
        self._view = None
        if self._file is not None and len(self._tail) >= self.BUFFER:
            self._write_tail()

    def extend(self, items: Iterable[int]) -> None:
        if isinstance(items, bytes) and self.code == "B":
            self._tail.frombytes(items)  # (``extend`` takes a bytes object an int at a time)
        else:
            self._tail.extend(items)
        self._view = None
        if self._file is not None and len(self._tail) >= self.BUFFER:
            self._write_tail()

    def __len__(self) -> int:
        return self._written + len(self._tail)

    @property
    def held(self) -> int:
        """Items held in memory (every one of an unspilled column; fewer than ``BUFFER`` of a spilled one)."""
        return len(self._tail)

    def view(self) -> View:
        """Every item appended so far (an int by index; a slice's ``tolist()``); valid until the next append."""
        view = self._view
        if view is None:
            with self._lock:
                view = self._view
                if view is None:
                    view = self._view = self._open()
        return view

    def items(self, start: int, stop: int) -> array[int]:
        """Items ``start:stop`` (within ``len``) as an ``array`` of their own, read without writing the buffer
        out or mapping the file (``view`` does both): a few items read between appends (``qa.keys``)."""
        with self._lock:
            out, written, size = array(self.code), self._written, self._tail.itemsize
            if self._file is not None and start < written:
                end = min(stop, written)
                out.frombytes(os.pread(self._file.fileno(), (end - start) * size, start * size))
                start = end
            if stop > start:
                out.extend(self._tail[start - written : stop - written])
            return out

    def numpy(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Items ``start:stop`` as a numpy array of their own (a copy)."""
        view = self.view()
        return np.frombuffer(view, dtype=np.dtype(self.code))[start:stop].copy()

    def _open(self) -> View:
        if self._file is None:
            return self._tail
        self._write_tail()
        if not self._written:
            return array(self.code)
        mapped = mmap.mmap(self._file.fileno(), self._written * self._tail.itemsize, prot=mmap.PROT_READ)
        return memoryview(mapped).cast(self.code)  # type: ignore[call-overload]  # an older view stays mapped while someone reads it

    def _write_tail(self) -> None:
        assert self._file is not None
        if not self._tail:
            return
        pwrite_all(self._file.fileno(), memoryview(self._tail).cast("B"), self._written * self._tail.itemsize)
        with self._lock:  # (``items`` reads the count and the buffer together)
            self._written += len(self._tail)
            self._tail = array(self.code)

    def close(self) -> None:
        """Drop the items (a spilled column's file goes once no view of it is left)."""
        self._view, self._tail = None, array(self.code)
        if self._file is not None:
            self._file.close()
            self._written = 0


class ByteRows:
    """Rows of bytes appended in order and read back by index or as a run (``rows``): the bytes in one spilled
    column and each row's end in another, so only a buffer of each is held in memory."""

    def __init__(self, *, folder: Path | None = None) -> None:
        self._data = Column("B", spill=True, folder=folder)  # row i's: data[ends[i - 1]:ends[i]]
        self._ends = Column("q", spill=True, folder=folder)

    def append(self, row: bytes) -> None:
        self._data.extend(row)
        self._ends.append(len(self._data))

    def __len__(self) -> int:
        return len(self._ends)

    def row(self, i: int) -> bytes:
        """Row ``i`` (from the end when negative; ``IndexError`` past it)."""
        ends = self._ends.view()
        i = range(len(ends))[i]
        return bytes(self._data.view()[ends[i - 1] if i else 0 : ends[i]])

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Rows ``start:stop`` in order (those appended by the time it starts)."""
        data, ends = self._data.view(), self._ends.view()
        begin = ends[start - 1] if start else 0
        for end in ends[start:stop]:
            yield bytes(data[begin:end])
            begin = end

    def close(self) -> None:
        self._data.close()
        self._ends.close()


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> int:
    """Write all of ``data`` at ``offset`` of ``fd`` (``os.pwrite`` may write less than it is given); returns
    the offset after it. Needs no shared file position: threads and a forked child write side by side."""
    view = memoryview(data).cast("B")
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done
    return offset
