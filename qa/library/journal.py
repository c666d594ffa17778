"""Commit a change atomically: corpus files move and ``current`` swaps under a journal that a restart replays.

A change's new build is complete and synced before anything here runs. Then the journal is written (synced),
files move into the corpus (and removed ones out of it), and one rename points ``current`` at the new build;
the journal goes last. A process killed at any moment leaves either no journal (nothing of the change is in
use) or a journal that ``recover`` finishes (``current`` already swapped) or undoes (it was not).
"""

from __future__ import annotations

import errno
import filecmp
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from qa.index.build import BUILDS, current_path, swap_current

log = logging.getLogger(__name__)
JOURNAL = ".change.json"


@dataclass
class Moves:
    """Files a change moves: ``into`` the corpus (staged upload -> corpus path) and ``out`` of it
    (corpus path -> the trash folder under the index)."""

    into: list[tuple[Path, Path]] = field(default_factory=list)
    out: list[tuple[Path, Path]] = field(default_factory=list)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_file(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` (atomic on one file system); across file systems, copy to a hidden name beside
    ``dst``, sync, then rename, so ``dst`` is never seen half-written."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.part")
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
        src.unlink()
    _fsync_dir(dst.parent)


def _write_journal(index_dir: Path, data: dict[str, object]) -> None:
    tmp = index_dir / f"{JOURNAL}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / JOURNAL)
    _fsync_dir(index_dir)


def commit(index_dir: Path, build: Path, moves: Moves) -> None:
    """Make ``build`` current together with its corpus file moves (the caller holds the build lock)."""
    _write_journal(
        index_dir,
        {
            "build": build.name,
            "into": [[str(a), str(b)] for a, b in moves.into],
            "out": [[str(a), str(b)] for a, b in moves.out],
        },
    )
    for src, dst in moves.out:
        move_file(src, dst)
    for src, dst in moves.into:
        move_file(src, dst)
    swap_current(index_dir, build)
    _fsync_dir(index_dir)
    _finish(index_dir, moves)


def _finish(index_dir: Path, moves: Moves) -> None:
    (index_dir / JOURNAL).unlink(missing_ok=True)
    for _, trashed in moves.out:
        trashed.unlink(missing_ok=True)


def recover(index_dir: Path) -> str | None:
    """Finish or undo a change a killed process left (the caller holds the build lock); what was done, or None."""
    path = index_dir / JOURNAL
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        build = index_dir / BUILDS / str(data["build"])
        moves = Moves(
            [(Path(a), Path(b)) for a, b in data["into"]], [(Path(a), Path(b)) for a, b in data["out"]]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable change journal (%s); it is written before any file moves", path, exc)
        path.unlink(missing_ok=True)
        return "dropped an unreadable journal"
    current = current_path(index_dir)
    if current.exists() and current.resolve() == build.resolve():
        for src, dst in moves.out + moves.into:  # roll forward: the new build already serves
            if src.exists():
                move_file(src, dst)
        _finish(index_dir, moves)
        log.warning("finished the change to %s that a stopped process left", build.name)
        return "finished"
    for src, dst in moves.into:  # roll back: the previous build still serves, put the corpus back
        if dst.exists() and not src.exists():
            move_file(dst, src)
        elif dst.exists() and filecmp.cmp(src, dst, shallow=False):
            dst.unlink()  # a copy across file systems that was complete but whose source was not yet removed
    for src, dst in moves.out:
        if dst.exists():
            move_file(dst, src)
    shutil.rmtree(build, ignore_errors=True)
    path.unlink(missing_ok=True)
    log.warning("undid the change to %s that a stopped process left", build.name)
    return "undone"
