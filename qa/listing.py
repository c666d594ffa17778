"""A corpus folder's document files, in the order a build reads them (``corpus_files``), held in scratch files.

A build lists the whole folder before it reads a file: the Ray pipeline needs the count and the order, and
the single process reads in the same order. Held as ``str`` a path took ~70 bytes (~7 GB at 10^8 files),
so the listing goes to a spilled column (``qa.columns``) as it is made. A folder's names are sorted in memory
up to ``RUN`` of them; a larger folder is sorted in runs of ``RUN`` names written to a scratch file and
merged, so a million files in one folder are sorted with ~65,000 names in memory at a time.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

from qa.columns import ByteRows
from qa.errors import CorpusError
from qa.readers import reader_for
from qa.text_rules import is_utf8_name, shown_name

RUN = 1 << 16  # a folder's names sorted in memory at a time (a larger folder: sorted runs, merged)


class CorpusFiles(Sequence[Path]):
    """A corpus folder's document files in order, each kept as its path's text below the folder, UTF-8 in a
    scratch file (a ``Path`` is made when read)."""

    def __init__(self, root: Path, *, folder: Path | None = None) -> None:
        self.root = root
        self.skipped: list[str] = []  # a message for each name left out that a reader would have read
        self._paths = ByteRows(folder=folder)  # each file's path below the folder, UTF-8

    def _append(self, name: str) -> None:
        self._paths.append(name.encode("utf-8"))  # (names that are no UTF-8 are left out)

    def __len__(self) -> int:
        return len(self._paths)

    @property
    def names(self) -> _Names:
        """Each file's path below the folder, as POSIX text."""
        return _Names(self._paths)

    @overload
    def __getitem__(self, i: int) -> Path: ...

    @overload
    def __getitem__(self, i: slice) -> list[Path]: ...

    def __getitem__(self, i: int | slice) -> Path | list[Path]:
        if isinstance(i, slice):
            return [self.root / name for name in self.names[i]]
        return self.root / self.names[i]

    def __iter__(self) -> Iterator[Path]:
        return (self.root / name for name in self.names)

    def close(self) -> None:
        """Let the scratch files go."""
        self._paths.close()


class _Names(Sequence[str]):
    """``CorpusFiles.names``: the paths' text by index or slice, decoded as read."""

    def __init__(self, paths: ByteRows) -> None:
        self._paths = paths

    def __len__(self) -> int:
        return len(self._paths)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if not isinstance(i, slice):
            return self._paths.row(i).decode("utf-8")
        start, stop, step = i.indices(len(self))
        if step == 1:
            return [row.decode("utf-8") for row in self._paths.rows(start, max(start, stop))]
        return [self[k] for k in range(start, stop, step)]

    def __iter__(self) -> Iterator[str]:
        return (row.decode("utf-8") for row in self._paths.rows())


def corpus_files(root: Path, *, folder: Path | None = None) -> CorpusFiles:
    """Document files under ``root`` that a reader handles, in a stable order: by their path's parts, as
    sorted ``Path``s are (a folder's files at its name's place among its siblings), folders that are links
    not followed, names starting with a dot left out, unreadable subfolders skipped. A name that is not
    UTF-8 text (a file or a folder; no id, JSON answer or Arrow column can carry it) is left out with a
    message in ``skipped``. Scratch files go in ``folder`` (the system's temporary folder without one)."""
    if not root.exists():
        raise CorpusError(f"{root}: corpus folder does not exist")
    if not root.is_dir():
        raise CorpusError(f"{root}: not a folder")
    files = CorpusFiles(root, folder=folder)
    try:
        top = _Listing(str(root), folder, files.skipped)
    except PermissionError as exc:
        files.close()
        raise CorpusError(f"{root}: cannot list the folder ({exc.strerror})") from exc
    stack: list[tuple[str, _Listing]] = [("", top)]
    try:
        while stack:
            prefix, listing = stack[-1]
            entry = next(listing, None)
            if entry is None:
                stack.pop()
                listing.close()
                continue
            name, is_folder = entry
            if is_folder:
                try:
                    inner = _Listing(os.path.join(listing.path, name), folder, files.skipped)
                except OSError:  # (sorted Paths from ``rglob`` skipped an unreadable subfolder too)
                    continue
                stack.append((prefix + name + "/", inner))
            else:
                files._append(prefix + name)  # (a top folder's own name: "" + name is name)
    except BaseException:
        files.close()
        raise
    finally:
        for _, listing in stack:
            listing.close()
    return files


class _Listing(Iterator[tuple[str, bool]]):
    """A folder's entries that ``corpus_files`` takes, as (name, is a folder) in order of name: its
    subfolders (not links to folders) and the files a reader handles that are not dot-names. The folder is
    read when this is made (``OSError`` if it cannot be); one ``os.DirEntry`` is held at a time (a million
    of them held at once, with their paths, left ~0.2 GB of freed pages in the heap). A name that is not
    UTF-8 text is left out, with a message in ``skipped``."""

    def __init__(self, path: str, scratch: Path | None, skipped: list[str]) -> None:
        self.path = path
        self._scratch = scratch
        self._sorted: ByteRows | None = None  # sorted runs: each entry's name (UTF-8), then 1 for a folder
        self._runs: list[int] = []  # each run's first entry
        names: list[str] = []
        folders: set[str] = set()
        with os.scandir(path) as it:
            for entry in it:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    is_file = not is_dir and (entry.is_file() or entry.is_symlink())
                except OSError:
                    continue
                name = entry.name
                if not (is_dir or (is_file and not name.startswith(".") and reader_for(Path(name)))):
                    continue
                if not name.isascii() and not is_utf8_name(name):
                    kind = "folder" if is_dir else "file"
                    skipped.append(
                        f"{shown_name(entry.path)}: the name is not UTF-8 text; rename the {kind} to read it"
                    )
                    continue
                if is_dir:
                    folders.add(name)
                names.append(name)
                if len(names) >= RUN:
                    self._write_run(names, folders)
                    names, folders = [], set()
        names.sort()
        last = ((name, name in folders) for name in names)
        self._entries: Iterator[tuple[str, bool]] = (
            heapq.merge(*(self._read_run(k) for k in range(len(self._runs))), last) if self._runs else last
        )

    def _write_run(self, names: list[str], folders: set[str]) -> None:
        if self._sorted is None:
            self._sorted = ByteRows(folder=self._scratch)
        self._runs.append(len(self._sorted))
        names.sort()
        for name in names:
            self._sorted.append(name.encode("utf-8") + (b"\1" if name in folders else b"\0"))

    def _read_run(self, k: int) -> Iterator[tuple[str, bool]]:
        assert self._sorted is not None
        stop = self._runs[k + 1] if k + 1 < len(self._runs) else len(self._sorted)
        for row in self._sorted.rows(self._runs[k], stop):
            yield row[:-1].decode("utf-8"), row[-1] == 1

    def __next__(self) -> tuple[str, bool]:
        return next(self._entries)

    def close(self) -> None:
        if self._sorted is not None:
            self._entries = iter(())
            self._sorted.close()
