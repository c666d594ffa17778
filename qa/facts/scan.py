"""Each document's body and caption sentences, split once, and their vocabulary mentions, found again only
when the vocabulary has since learned a name the sentence could hold.

Building facts reads every sentence three times (two learning passes, then extraction with what was
learned). Each time it needs the sentence's mentions, and the vocabulary has usually learned nothing the
sentence contains since it was last scanned: a name matches in a sentence only where the sentence's
comparison key (``norm_key``: lower case, no spaces or dashes) contains the name's key, less its last
letter (plural and '-y'/'-ies' endings). So a scan is kept with the vocabulary's name count at the time,
and used again while no name added since could be in the sentence.

The scans of a document are columns (spans, blocks, the name count at each scan), its sentences' keys one
string, and mentions kept only for sentences that have some: a sentence scan is asked for by a transient
``Scan``. At 10^6 passages, one object per sentence with its key took ~0.8 GB.

Even as columns the scans grow with the corpus (~25 KB a document of keys alone, a quarter of its text).
Given a folder (a build's, whose documents are on a shelf), ``Scans`` keeps the last few documents' scans
and writes the rest to an unnamed scratch file there, reading a document's back when it is next scanned.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from qa.columns import pwrite_all
from qa.documents import Document
from qa.facts.vocab import Mention, Vocabulary, norm_key
from qa.sentences import split_sentences

_KINDS = ("body", "caption")


@dataclass(slots=True)
class Scan:
    """One sentence of a document's scans (its ``row`` there), as ``Scans.sentences`` lists them."""

    start: int
    end: int
    kind: str  # body | caption
    block: int
    row: int


@dataclass
class _DocumentScans:
    starts: array[int] = field(default_factory=lambda: array("q"))
    ends: array[int] = field(default_factory=lambda: array("q"))
    blocks: array[int] = field(default_factory=lambda: array("i"))
    kinds: bytearray = field(default_factory=bytearray)  # index into _KINDS
    names_seen: array[int] = field(default_factory=lambda: array("i"))  # -1: not scanned yet
    mentions: dict[int, list[Mention]] = field(default_factory=dict)  # rows with any
    # every sentence's norm_key in UTF-8, one after another (made when first needed): one str would take 2
    # or 4 bytes a character for all of them once any held a character past Latin-1
    keys: bytes = b""
    key_at: array[int] = field(default_factory=lambda: array("q"))  # row r's key: keys[key_at[r]:key_at[r+1]]


class Scans:
    """The sentence scans of a corpus against one (growing) vocabulary; with ``spill``, those of all but the
    last ``KEEP`` documents scanned are in a scratch file in ``folder`` (None: the system's temporary one)."""

    KEEP = 64

    def __init__(self, vocab: Vocabulary, *, spill: bool = False, folder: Path | None = None) -> None:
        self.vocab = vocab
        self._docs: OrderedDict[str, _DocumentScans] = OrderedDict()  # most recently scanned last
        self._needles: list[bytes] = []  # the vocabulary's names_added, in UTF-8
        self._spill = _ScanFile(folder) if spill else None

    def close(self) -> None:
        self._docs.clear()
        if self._spill is not None:
            self._spill.close()

    def _of(self, doc: Document) -> _DocumentScans:
        found = self._docs.get(doc.id)
        if found is not None:
            self._docs.move_to_end(doc.id)
            return found
        if self._spill is not None:
            found = self._spill.read(doc.id)
            if found is not None:
                self._keep(doc.id, found)
                return found
        found = _DocumentScans()
        for i, block in enumerate(doc.blocks):
            if block.kind in _KINDS:
                for s, e in split_sentences(doc.text, block.start, block.end):
                    found.starts.append(s)
                    found.ends.append(e)
                    found.blocks.append(i)
                    found.kinds.append(_KINDS.index(block.kind))
        found.names_seen = array("i", [-1]) * len(found.starts)
        self._keep(doc.id, found)
        return found

    def sentences(self, doc: Document) -> list[Scan]:
        """``doc``'s body and caption sentences in order (split on first use)."""
        d = self._of(doc)
        return [
            Scan(d.starts[r], d.ends[r], _KINDS[d.kinds[r]], d.blocks[r], r) for r in range(len(d.starts))
        ]

    def current(self, doc: Document, scan: Scan) -> bool:
        """Whether ``scan``'s mentions are still what the vocabulary finds in it (no name learned since its
        scan could occur in it)."""
        d, r = self._of(doc), scan.row
        added, seen = self.vocab.names_added, d.names_seen[scan.row]
        if seen < 0:
            return False
        if seen == len(added):
            return True
        if not d.key_at:
            keys = [norm_key(doc.text[s:e]).encode() for s, e in zip(d.starts, d.ends, strict=True)]
            d.key_at = array("q", [0])
            for k in keys:
                d.key_at.append(d.key_at[-1] + len(k))
            d.keys = b"".join(keys)
        self._needles.extend(n.encode() for n in added[len(self._needles) :])
        lo, hi = d.key_at[r], d.key_at[r + 1]  # UTF-8 in UTF-8 is found only at a character boundary
        if any(d.keys.find(needle, lo, hi) >= 0 for needle in self._needles[seen : len(added)]):
            return False
        d.names_seen[r] = len(added)
        return True

    def mentions(self, doc: Document, scan: Scan) -> list[Mention]:
        """The vocabulary's mentions in the sentence, as it stands now."""
        d, r = self._of(doc), scan.row
        if not self.current(doc, scan):
            d.names_seen[r] = len(self.vocab.names_added)
            found = self.vocab.find(doc.text, scan.start, scan.end)
            if found:
                d.mentions[r] = found
            else:
                d.mentions.pop(r, None)
        return d.mentions.get(r) or []

    def _keep(self, doc_id: str, scans: _DocumentScans) -> None:
        self._docs[doc_id] = scans
        if self._spill is not None and len(self._docs) > self.KEEP:
            self._spill.write(*self._docs.popitem(last=False))


class _ScanFile:
    """Documents' scans pickled into one unnamed file (gone when closed, or when a build is killed); a
    document's scans written again go back into their place where they still fit, else after the rest."""

    def __init__(self, folder: Path | None) -> None:
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".scans-")  # noqa: SIM115 (closed by close)
        self._at: dict[str, tuple[int, int, int]] = {}  # doc id -> (offset, bytes, room)
        self._end = 0

    def read(self, doc_id: str) -> _DocumentScans | None:
        at = self._at.get(doc_id)
        if at is None:
            return None
        data = os.pread(self._file.fileno(), at[1], at[0])
        if len(data) != at[1]:
            raise OSError(f"the sentence scans' scratch file is cut short ({len(data)} of {at[1]} bytes)")
        found: _DocumentScans = pickle.loads(data)  # noqa: S301 (this process wrote it, to a file nobody can name)
        return found

    def write(self, doc_id: str, scans: _DocumentScans) -> None:
        data = pickle.dumps(scans, protocol=pickle.HIGHEST_PROTOCOL)
        offset, _, room = self._at.get(doc_id, (self._end, 0, 0))
        if len(data) > room:
            offset, room = self._end, len(data)
            self._end += room
        pwrite_all(self._file.fileno(), data, offset)
        self._at[doc_id] = (offset, len(data), room)

    def close(self) -> None:
        self._file.close()
