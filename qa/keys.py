"""Strings numbered in the order they come (a build's document ids), held as a few bytes each.

A build numbers its documents (the shelf's rows, the passage table's documents) and looks them up by id.
A ``dict`` of ``str`` and a ``list`` of them cost ~0.2 KB a document: ~1 GB at PubMed Central's ~6 million
articles, for each table that keeps them. ``KeyRows`` keeps the strings' UTF-8 bytes in ``Column``s (spilled
to scratch files with ``spill``: ``qa.columns``) and an open-addressed table of each distinct string's hash
and first row (12 bytes a slot, at most half of them full: 24-48 bytes a string). A lookup hashes the
string, walks the table from its slot and checks the string of each row whose hash matches, so hash
collisions cost a read, never a wrong row. A spilled ``KeyRows`` maps a table of more than ``MAPPED_SLOTS``
slots from an unnamed scratch file (as ``qa.columns`` maps its columns): its pages are the kernel's file
cache, not the process's heap, so at PubMed Central's ~6 million articles the three a build keeps (the
shelf's, the passage table's, the corpus hash's) are not ~0.6 GB of heap. Growing it places the old slots again a chunk at a
time, so what it allocates meanwhile is bounded too.

The hashes are Python's own (``hash``): the same in this process and in a forked child (the build steps'
process reads the parent's tables), never written anywhere.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from qa.columns import Column

_EMPTY = -1
MAPPED_SLOTS = 1 << 16  # a spilled table of more slots than this (768 KB) is mapped from a scratch file
_GROW_CHUNK = 1 << 16  # old slots placed again at a time when the table grows
_hash = hash  # (a test collides every string to check that collisions cost reads, not rows)


class KeyRows(Mapping[str, int]):
    """Strings appended in order (``append``; row i's is ``key(i)``), read as a mapping of each distinct one
    to its first row (``self[key]``, ``get``, ``in``; iterated in that order). A string appended again gets a
    row of its own (``key`` reads it) and keeps its first row; ``repeated`` lists such strings."""

    def __init__(self, *, spill: bool = False, folder: Path | None = None) -> None:
        self._spill, self._folder = spill, folder
        self._bytes = Column("B", spill=spill, folder=folder)
        self._ends = Column("q", spill=spill, folder=folder)  # row i's bytes: _bytes[ends[i - 1]:ends[i]]
        # each slot's first row (or _EMPTY) and its string's hash; replaced whole as it grows (readers in
        # other threads see the old table or the new one)
        self._table = (np.full(8, _EMPTY, dtype=np.int32), np.zeros(8, dtype=np.int64))
        self._distinct = 0
        self.repeated: list[str] = []  # strings appended more than once (once each)
        self._last: tuple[int, str] = (-1, "")  # the row read last and its string (rows come in runs)

    def append(self, key: str) -> bool:
        """Give ``key`` the next row; False if it already had one (it keeps that one as its first)."""
        h = _hash(key)
        slot = self._slot(key, h)
        row = len(self._ends)
        data = key.encode("utf-8")
        self._bytes.extend(data)
        self._ends.append(len(self._bytes))
        rows, hashes = self._table
        if rows[slot] != _EMPTY:
            if key not in self.repeated:
                self.repeated.append(key)
            return False
        rows[slot], hashes[slot] = row, h
        self._distinct += 1
        if 2 * self._distinct > len(rows):
            self._grow()
        return True

    def key(self, row: int) -> str:
        """Row ``row``'s string."""
        last = self._last
        if last[0] == row:
            return last[1]
        if not 0 <= row < len(self._ends):
            raise IndexError(f"key row {row} out of range ({len(self._ends)} rows)")
        bounds = self._ends.items(row - 1, row + 1) if row else [0, *self._ends.items(0, 1)]
        key = self._bytes.items(bounds[0], bounds[1]).tobytes().decode("utf-8")
        self._last = (row, key)
        return key

    @property
    def rows(self) -> int:
        """Rows appended (repeats included)."""
        return len(self._ends)

    def get(self, key: object, default: int | None = None) -> int | None:  # type: ignore[override]
        if not isinstance(key, str):
            return default
        rows, _ = self._table
        row = int(rows[self._slot(key, _hash(key), self._table)])
        return default if row == _EMPTY else row

    def __getitem__(self, key: str) -> int:
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return row

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return self._distinct

    def __iter__(self) -> Iterator[str]:
        for row in range(len(self._ends)):
            key = self.key(row)
            if self.get(key) == row:
                yield key

    def _slot(self, key: str, h: int, table: tuple[np.ndarray, np.ndarray] | None = None) -> int:
        """The slot of ``table`` (the current one) holding ``key``, or the empty slot where it would go."""
        rows, hashes = table if table is not None else self._table
        mask = len(rows) - 1
        slot = h & mask
        while True:
            row = int(rows[slot])
            if row == _EMPTY or (int(hashes[slot]) == h and self.key(row) == key):
                return slot
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        """Twice the slots, every full one placed again (linear probing, a round of slots at a time)."""
        old_rows, old_hashes = self._table
        size = 2 * len(old_rows)
        new_rows, new_hashes = self._new_table(size)
        # a chunk of old slots placed after another is still linear probing: each walks to its first free slot
        for at in range(0, len(old_rows), _GROW_CHUNK):
            full = old_rows[at : at + _GROW_CHUNK] != _EMPTY
            rows, hashes = old_rows[at : at + _GROW_CHUNK][full], old_hashes[at : at + _GROW_CHUNK][full]
            slot = hashes & (size - 1)
            todo = np.arange(len(rows))
            while todo.size:  # each string steps past full slots only, as a lookup walks
                where = slot[todo]
                free = new_rows[where] == _EMPTY
                taken, first = np.unique(where[free], return_index=True)  # one string a free slot a round
                placed = todo[free][first]
                new_rows[taken], new_hashes[taken] = rows[placed], hashes[placed]
                left = np.ones(len(rows), dtype=bool)
                left[placed] = False
                todo = todo[left[todo]]
                slot[todo] = (slot[todo] + 1) & (size - 1)
        self._table = (new_rows, new_hashes)

    def _new_table(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``size`` empty slots: arrays in memory, or a spilled table's over a mapped scratch file."""
        if not self._spill or size <= MAPPED_SLOTS:
            return np.full(size, _EMPTY, dtype=np.int32), np.zeros(size, dtype=np.int64)
        with tempfile.TemporaryFile(dir=self._folder, prefix=".keys-") as file:
            if hasattr(os, "posix_fallocate"):  # (a full disk: an OSError here, not a SIGBUS later)
                os.posix_fallocate(file.fileno(), 0, 12 * size)
            else:  # (macOS has none)
                file.truncate(12 * size)
            pages = mmap.mmap(file.fileno(), 12 * size)  # (the map keeps the file; the arrays keep the map)
        hashes = np.frombuffer(pages, dtype=np.int64, count=size)
        rows = np.frombuffer(pages, dtype=np.int32, count=size, offset=8 * size)
        rows.fill(_EMPTY)
        return rows, hashes

    @property
    def mapped(self) -> bool:
        """Whether the table is mapped from a scratch file (not held in the heap)."""
        return self._spill and len(self._table[0]) > MAPPED_SLOTS

    @property
    def held_bytes(self) -> int:
        """Bytes held in the heap: the table (unless mapped) and the columns' buffers."""
        rows, hashes = self._table
        table = 0 if self.mapped else int(rows.nbytes + hashes.nbytes)
        return table + self._bytes.held + 8 * self._ends.held

    def close(self) -> None:
        """Let go of the table (a mapped one is unmapped once no reader holds it) and the columns' files."""
        self._table = (np.full(8, _EMPTY, dtype=np.int32), np.zeros(8, dtype=np.int64))
        self._distinct = 0
        self._bytes.close()
        self._ends.close()
