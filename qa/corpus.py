"""Load a corpus folder: documents through their readers, metadata from manifest.json, one hash for all."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qa.documents import Document, DocumentMeta
from qa.errors import CorpusError
from qa.readers import reader_for, supported_suffixes
from qa.shelf import DocumentShelf, document_ids, rows_by_id

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VOCABULARY = "vocabulary.json"
_META_FIELDS = {f.name for f in fields(DocumentMeta)}


@dataclass
class Corpus:
    root: Path
    documents: Sequence[Document]  # a list, or a build's DocumentShelf (on disk, read back by row)
    skipped: list[str] = field(default_factory=list)  # one message per file left out
    hash: str = ""
    _rows: Mapping[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def get(self, doc_id: str) -> Document | None:
        if self._rows is None or len(self._rows) != len(self.documents):
            self._rows = rows_by_id(self.documents)
        row = self._rows.get(doc_id)
        return None if row is None else self.documents[row]


def _read_manifest(root: Path) -> dict[str, dict[str, Any]]:
    path = root / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["documents"] if isinstance(data, dict) else data
        return {str(e["file"]): e for e in entries}
    except (ValueError, KeyError, TypeError) as exc:
        raise CorpusError(
            f"{path}: not a valid manifest ({exc}); expected {{'documents': [{{'file': ...}}]}}"
        ) from exc


def corpus_files(root: Path) -> list[Path]:
    """Document files under ``root`` that a reader handles, in a stable order."""
    if not root.exists():
        raise CorpusError(f"{root}: corpus folder does not exist")
    if not root.is_dir():
        raise CorpusError(f"{root}: not a folder")
    try:
        paths = sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    except PermissionError as exc:
        raise CorpusError(f"{root}: cannot list the folder ({exc.strerror})") from exc
    return [p for p in paths if reader_for(p) is not None and not p.name.startswith(".")]


def load_document(path: Path, root: Path, entry: dict[str, Any] | None, max_bytes: int) -> Document:
    reader = reader_for(path)
    if reader is None:
        raise CorpusError(
            f"{path}: no reader for '{path.suffix}' (supported: {', '.join(supported_suffixes())})"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from exc
    if size > max_bytes:
        raise CorpusError(
            f"{path}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.1f} MB limit (QA_MAX_FILE_MB)"
        )
    try:
        parsed = reader.read(path)
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from exc
    rel = path.relative_to(root).as_posix()
    from_file = {k: v for k, v in parsed.meta.items() if k in _META_FIELDS and v not in (None, "", [])}
    # the manifest wins, but a field it leaves empty keeps what the file states
    stated = {k: v for k, v in (entry or {}).items() if k in _META_FIELDS and v not in (None, "", [])}
    meta_values = from_file | stated
    meta_values.setdefault("id", path.stem)
    meta_values["file"] = rel
    meta = DocumentMeta(**meta_values)
    digest = hashlib.sha256(parsed.text.encode("utf-8")).hexdigest()
    return Document(
        meta, parsed.text, parsed.blocks, parsed.sections, digest, parsed.pages, parsed.references
    )


def load_corpus(root: Path, *, max_file_mb: float = 20.0, shelf: DocumentShelf | None = None) -> Corpus:
    """Read every supported document under ``root``; unreadable ones are skipped with a warning. With a
    ``shelf``, documents are put on it as they are read (a build's: one in memory at a time)."""
    root = Path(root)
    manifest = read_manifest(root)
    documents: list[Document] | DocumentShelf = [] if shelf is None else shelf
    skipped: list[str] = []
    entries: list[tuple[str, dict[str, Any], str]] = []  # what the corpus hash reads (the shelf is not read)
    for path in corpus_files(root):
        document, message = read_corpus_file(path, root, manifest, max_file_mb=max_file_mb)
        if document is not None:
            documents.append(document)
            entries.append((document.id, document.meta.to_dict(), document.sha256))
        else:
            skipped.append(message)
    return assemble_corpus(root, manifest, documents, skipped, entries)


def read_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """``root``'s manifest.json entries by corpus file (empty without one)."""
    return _read_manifest(Path(root))


def read_corpus_file(
    path: Path, root: Path, manifest: dict[str, dict[str, Any]], *, max_file_mb: float
) -> tuple[Document | None, str]:
    """One corpus file as a Document, or None and the message saying why it is skipped."""
    rel = path.relative_to(root).as_posix()
    try:
        return load_document(path, root, manifest.get(rel), int(max_file_mb * 1e6)), ""
    except CorpusError as exc:
        log.warning("skipping %s", exc.message)
        return None, exc.message


def assemble_corpus(
    root: Path,
    manifest: dict[str, dict[str, Any]],
    documents: Sequence[Document],
    skipped: list[str],
    entries: list[tuple[str, dict[str, Any], str]] | None = None,
) -> Corpus:
    """The Corpus of documents read from ``root`` (in corpus file order), checked as a whole."""
    if not documents:
        reason = "; ".join(skipped) if skipped else f"no {'/'.join(supported_suffixes())} files"
        raise CorpusError(f"{root}: no readable documents ({reason})")
    _check_ids(root, document_ids(documents))
    for rel in manifest:
        if not (root / rel).exists():
            skipped.append(f"{root / rel}: listed in {MANIFEST} but missing")
    digest = _hash(root, entries) if entries is not None else corpus_hash(root, documents)
    return Corpus(root, documents, skipped, digest)


def _check_ids(root: Path, ids: list[str]) -> None:
    dupes = sorted(i for i, n in Counter(ids).items() if n > 1)  # linear: 10^6 files
    if dupes:
        raise CorpusError(f"{root}: duplicate document ids {dupes}; give each file its own id in {MANIFEST}")


def corpus_hash(root: Path, documents: Iterable[Document]) -> str:
    """One hash over the documents' text and metadata and the corpus-level files that shape the index."""
    return _hash(root, ((d.id, d.meta.to_dict(), d.sha256) for d in documents))


def corpus_digest(root: Path, *, max_file_mb: float = 20.0) -> str:
    """``load_corpus(root).hash`` with one document in memory at a time (a server checking its index at
    start reads every document but keeps none: at 10^4 documents holding them all cost 600 MB that the
    allocator never gave back)."""
    root = Path(root)
    manifest = read_manifest(root)
    entries, skipped = [], []
    for path in corpus_files(root):
        document, message = read_corpus_file(path, root, manifest, max_file_mb=max_file_mb)
        if document is None:
            skipped.append(message)
        else:
            entries.append((document.id, document.meta.to_dict(), document.sha256))
    if not entries:
        reason = "; ".join(skipped) if skipped else f"no {'/'.join(supported_suffixes())} files"
        raise CorpusError(f"{root}: no readable documents ({reason})")
    _check_ids(root, [e[0] for e in entries])
    return _hash(root, entries)


def _hash(root: Path, entries: Iterable[tuple[str, dict[str, Any], str]]) -> str:
    h = hashlib.sha256()
    for _, meta, sha in sorted(entries, key=lambda e: e[0]):
        h.update(json.dumps(meta, sort_keys=True).encode())
        h.update(sha.encode())
    from qa.facts.vocab import packaged_vocabulary_bytes

    h.update(packaged_vocabulary_bytes())
    vocab = root / VOCABULARY
    if vocab.exists():
        h.update(vocab.read_bytes())
    return h.hexdigest()
