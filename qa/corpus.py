"""Load a corpus folder: documents through their readers, metadata from manifest.json, one hash for all."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qa.columns import ByteRows
from qa.documents import Document, DocumentMeta
from qa.errors import CorpusError
from qa.keys import KeyRows
from qa.listing import corpus_files
from qa.readers import reader_for, supported_suffixes
from qa.shelf import DocumentShelf, repeated_ids, rows_by_id

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
    # each document's corpus file and its bytes' sha256, taken as it was read (a build's sources.json)
    sources: FileShas | None = None
    _rows: Mapping[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def get(self, doc_id: str) -> Document | None:
        if self._rows is None or len(self._rows) != len(self.documents):
            self._rows = rows_by_id(self.documents)
        row = self._rows.get(doc_id)
        return None if row is None else self.documents[row]

    def close(self) -> None:
        """Let go of the scratch files behind ``sources`` (the documents' shelf is its owner's to close)."""
        if self.sources is not None:
            self.sources.close()


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
    folder = shelf.folder if shelf is not None else None
    files = corpus_files(root, folder=folder)  # (a folder it cannot list fails before other scratch files)
    skipped: list[str] = list(files.skipped)
    entries = HashEntries(folder=folder)  # (the shelf is not read again)
    sources = FileShas(folder=folder)
    try:
        for path in files:
            document, message = read_corpus_file(path, root, manifest, max_file_mb=max_file_mb)
            if document is None:
                skipped.append(message)
                continue
            try:  # (the file was just read: its bytes are in the kernel's cache)
                sha = file_sha256(path)
            except OSError as exc:
                skipped.append(f"{path}: cannot read ({exc.strerror})")
                continue
            documents.append(document)
            entries.add(document.id, document.meta.to_dict(), document.sha256)
            sources.add(document.meta.file, sha)
        corpus = assemble_corpus(root, manifest, documents, skipped, entries)
    except BaseException:
        sources.close()
        raise
    finally:
        entries.close()
        files.close()
    corpus.sources = sources
    return corpus


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
    entries: HashEntries | None = None,
) -> Corpus:
    """The Corpus of documents read from ``root`` (in corpus file order), checked as a whole."""
    if not documents:
        reason = "; ".join(skipped) if skipped else f"no {'/'.join(supported_suffixes())} files"
        raise CorpusError(f"{root}: no readable documents ({reason})")
    _refuse_repeats(root, repeated_ids(documents))
    for rel in manifest:
        if not (root / rel).exists():
            skipped.append(f"{root / rel}: listed in {MANIFEST} but missing")
    digest = entries.hash(root) if entries is not None else corpus_hash(root, documents)
    return Corpus(root, documents, skipped, digest)


def _refuse_repeats(root: Path, dupes: list[str]) -> None:
    if dupes:
        raise CorpusError(f"{root}: duplicate document ids {dupes}; give each file its own id in {MANIFEST}")


class HashEntries:
    """What the corpus hash reads of each document (its id, its metadata as JSON and its text's sha256),
    ``add``-ed as documents are read and hashed in order of id (``hash``). Held as bytes in scratch files
    (``qa.columns``, ``qa.keys``), not as a dict a document: a document's metadata took ~1 KB, ~6 GB at
    PubMed Central's ~6 million articles. Ids read in order (file stems in file order, as most corpora
    name them) are hashed in that order; others are sorted by id first (their ids then held while sorted)."""

    def __init__(self, *, folder: Path | None = None) -> None:
        self._ids = KeyRows(spill=True, folder=folder)
        self._entries = ByteRows(folder=folder)  # row i's metadata as JSON, then its text's sha256
        self._ordered, self._last = True, ""

    def add(self, doc_id: str, meta: dict[str, Any], sha256: str) -> None:
        self._ids.append(doc_id)
        self._ordered, self._last = self._ordered and doc_id >= self._last, doc_id
        self._entries.append(json.dumps(meta, sort_keys=True).encode() + sha256.encode())

    @property
    def ids(self) -> KeyRows:
        return self._ids

    def hash(self, root: Path) -> str:
        """The corpus hash (``corpus_hash``'s) of the documents added, with ``root``'s corpus-level files."""
        n = self._ids.rows
        rows = (
            self._entries.rows()
            if self._ordered
            else map(self._entries.row, sorted(range(n), key=self._ids.key))
        )
        h = hashlib.sha256()
        for row in rows:
            h.update(row)
        return _with_corpus_files(h, root)

    def close(self) -> None:
        self._ids.close()
        self._entries.close()


class FileShas:
    """Each document's corpus file and the sha256 of the file's bytes, ``add``-ed in corpus order as the
    documents are read (a build writes them as ``sources.json``, by which a later change tells an unchanged
    file from an edited one). Held as bytes in scratch files: taking them after the read meant decoding
    every document from the build's shelf again (~100 s at 10^6 documents) and a dict of them all."""

    def __init__(self, *, folder: Path | None = None) -> None:
        self._rows = ByteRows(folder=folder)  # a file's path (UTF-8), then its 32-byte sha256

    def add(self, file: str, sha256: str) -> None:
        self._rows.append(file.encode("utf-8") + bytes.fromhex(sha256))

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """(corpus file, sha256 in hex) in the order added."""
        for row in self._rows.rows():
            yield row[:-32].decode("utf-8"), row[-32:].hex()

    def close(self) -> None:
        self._rows.close()


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def corpus_hash(root: Path, documents: Iterable[Document]) -> str:
    """One hash over the documents' text and metadata and the corpus-level files that shape the index."""
    entries = HashEntries()
    try:
        for d in documents:
            entries.add(d.id, d.meta.to_dict(), d.sha256)
        return entries.hash(root)
    finally:
        entries.close()


def corpus_digest(root: Path, *, max_file_mb: float = 20.0) -> str:
    """``load_corpus(root).hash`` with one document in memory at a time (a server checking its index at
    start reads every document but keeps none: at 10^4 documents holding them all cost 600 MB that the
    allocator never gave back)."""
    root = Path(root)
    manifest = read_manifest(root)
    files = corpus_files(root)
    entries, skipped = HashEntries(), list(files.skipped)
    try:
        for path in files:
            document, message = read_corpus_file(path, root, manifest, max_file_mb=max_file_mb)
            if document is None:
                skipped.append(message)
            else:
                entries.add(document.id, document.meta.to_dict(), document.sha256)
        if not entries.ids.rows:
            reason = "; ".join(skipped) if skipped else f"no {'/'.join(supported_suffixes())} files"
            raise CorpusError(f"{root}: no readable documents ({reason})")
        _refuse_repeats(root, sorted(entries.ids.repeated))
        return entries.hash(root)
    finally:
        entries.close()
        files.close()


def _with_corpus_files(h: Any, root: Path) -> str:
    """``h`` (the documents' part of the corpus hash) updated with the vocabularies that shape the facts."""
    from qa.facts.vocab import packaged_vocabulary_bytes

    h.update(packaged_vocabulary_bytes())
    vocab = root / VOCABULARY
    if vocab.exists():
        h.update(vocab.read_bytes())
    return h.hexdigest()
