"""Untrusted files: a safe name, a bounded copy into a staging folder, and a parse before the corpus sees it."""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from qa.corpus import _read_manifest, load_document
from qa.documents import Document
from qa.errors import BadInput, CorpusError, TooLarge
from qa.readers import reader_for, supported_suffixes
from qa.text_rules import has_control_chars, is_utf8_name, shown_name

STAGING = "staging"
MAX_NAME_CHARS = 200
STALE_STAGING_SECONDS = 3600.0
_CHUNK = 1 << 16


@dataclass
class Staged:
    """A parsed upload waiting in the staging folder: its file, its bytes' sha256 and the document read."""

    path: Path
    name: str
    sha256: str
    document: Document


def safe_name(name: str | None) -> str:
    """``name`` as a file name for the corpus folder, or BadInput: no folders, no '..', no hidden or odd names."""
    raw = (name or "").strip()
    if not raw:
        raise BadInput("the upload has no file name")
    if not is_utf8_name(raw):  # (a local file's, for `qa add`)
        raise BadInput(f"{shown_name(raw)}: the file name is not UTF-8 text; rename the file")
    if "/" in raw or "\\" in raw or ".." in raw or has_control_chars(raw) or "\x00" in raw:
        raise BadInput(f"{raw!r}: a file name may not contain '/', '\\', '..' or control characters")
    if raw.startswith(".") or raw.startswith("~") or len(raw) > MAX_NAME_CHARS:
        raise BadInput(f"{raw!r}: not an acceptable file name (hidden, or over {MAX_NAME_CHARS} characters)")
    if reader_for(Path(raw)) is None:
        raise BadInput(
            f"{raw}: no reader for this kind of file (supported: {', '.join(supported_suffixes())})"
        )
    return raw


def staging_folder(index_dir: Path) -> Path:
    """A fresh folder of its own for one change's uploads (stale ones of killed processes are removed)."""
    root = Path(index_dir) / STAGING
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if now - old.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    return folder


def copy_bounded(src: BinaryIO, dst: Path, max_bytes: int) -> str:
    """Copy ``src`` to ``dst`` and return the bytes' sha256; TooLarge as soon as it passes ``max_bytes``."""
    h = hashlib.sha256()
    size = 0
    with open(dst, "wb") as out:
        while chunk := src.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                out.close()
                dst.unlink(missing_ok=True)
                raise TooLarge(
                    f"{dst.name}: over the {max_bytes / 1e6:.1f} MB upload limit (QA_UPLOAD_MAX_MB)",
                    detail={"max_bytes": max_bytes},
                )
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def parse_staged(
    path: Path,
    sha256: str,
    corpus_dir: Path,
    *,
    max_bytes: int,
    max_pages: int,
    target_name: str | None = None,
) -> Staged:
    """Read a staged file as it will read in the corpus (its manifest entry applies); CorpusError names it."""
    name = target_name or path.name
    entry = _read_manifest(Path(corpus_dir)).get(name) if Path(corpus_dir).is_dir() else None
    try:
        doc = load_document(path, path.parent, entry, max_bytes)
    except CorpusError as exc:
        raise CorpusError(exc.message.replace(str(path), name), detail=exc.detail) from exc
    doc.meta.file = name
    if entry is None or "id" not in entry:
        doc.meta.id = Path(name).stem
    if max_pages and len(doc.pages) > max_pages:
        raise TooLarge(
            f"{name}: {len(doc.pages)} pages is over the {max_pages}-page upload limit (QA_UPLOAD_MAX_PAGES)",
            detail={"pages": len(doc.pages), "max_pages": max_pages},
        )
    return Staged(path, name, sha256, doc)


def stage_files(
    paths: Iterable[Path], index_dir: Path, corpus_dir: Path, *, max_bytes: int, max_pages: int
) -> tuple[list[Staged], list[str]]:
    """Copy and parse local files (the CLI's `qa add`); the ones that fail give one message each."""
    folder = staging_folder(index_dir)
    staged: list[Staged] = []
    errors: list[str] = []
    for path in paths:
        where = shown_name(str(path))
        try:
            name = safe_name(path.name)
            dst = folder / name
            if dst.exists():
                raise BadInput(f"{where}: another file named {name} is in this change")
            with open(path, "rb") as fh:
                digest = copy_bounded(fh, dst, max_bytes)
            staged.append(parse_staged(dst, digest, corpus_dir, max_bytes=max_bytes, max_pages=max_pages))
        except OSError as exc:
            errors.append(f"{where}: cannot read ({exc.strerror})")
        except (BadInput, CorpusError, TooLarge) as exc:
            errors.append(exc.message if where in exc.message else f"{where}: {exc.message}")
    return staged, errors


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and under each folder every file a reader handles (hidden ones left out)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and not p.name.startswith(".") and reader_for(p) is not None
                )
            )
        else:
            out.append(path)
    return out
