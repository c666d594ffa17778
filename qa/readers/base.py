"""The reader interface and the checks every text-based reader shares (binary, encoding, emptiness)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qa.documents import Block, Reference, Section
from qa.errors import CorpusError

# Back matter of research articles: statements about the paper, not its content (a section of kind "back").
BACK_MATTER = re.compile(
    r"^(?:\d{1,2}\.?\s+)?(?:acknowledge?ments?|competing interests?|conflicts? of interests?|"
    r"declarations?(?: of (?:competing )?interests?)?|authors?[’'`]?s?[’'`]? contributions?|author details|"
    r"author information|funding(?: information)?|additional files?|additional information|"
    r"supplementary (?:information|material|data)|data availability(?: statement)?|code availability|"
    r"availability of data and materials|ethics (?:approval|statement|declarations)(?: and consent to participate)?|"
    r"consent for publication|peer review(?: information)?|reprints and permissions(?: information)?|"
    r"publisher[’'`]?s note|open access|reporting summary|inclusion and ethics|rights and permissions|"
    r"about this article|correspondence and requests for materials)\b",
    re.I,
)


# The parts of a structured abstract, each opening with its label: "Background: ...", "Objectives. ...".
ABSTRACT_PART = re.compile(
    r"(?:^|(?<=[.!?]\s))(?P<label>Background|Objectives?|Aims?|Purpose|Introduction|Context|Methods?|"
    r"Materials and methods|Patients and methods|Design|Setting|Participants|Interventions?|Measurements|"
    r"Results?|Findings|Conclusions?|Interpretation|Significance|Trial registration|Keywords?)[.:]\s+(?=\S)"
)


def abstract_parts(text: str) -> list[tuple[str, int, int]]:
    """(label, start, end) of each labelled part of a structured abstract paragraph, the label excluded;
    [] when ``text`` does not open with a label."""
    found = list(ABSTRACT_PART.finditer(text))
    if not found or found[0].start() != 0:
        return []
    ends = [m.start() for m in found[1:]] + [len(text)]
    return [(m.group("label"), m.end(), end) for m, end in zip(found, ends, strict=True)]


def is_back_matter(title: str) -> bool:
    """``title`` names a back-matter section ("Competing interests", "Peer review information" ...)."""
    return bool(BACK_MATTER.match(title.strip()))


@dataclass
class ParsedText:
    """What a reader returns: the source text that every offset indexes into, and its structure."""

    text: str
    blocks: list[Block]
    sections: list[Section]
    meta: dict[str, Any] = field(default_factory=dict)  # what the file says of itself; the manifest wins
    pages: list[int] = field(default_factory=list)  # offsets where pages start (paged formats)
    references: list[Reference] = field(default_factory=list)


class Reader(Protocol):
    name: str
    suffixes: tuple[str, ...]

    def read(self, path: Path) -> ParsedText: ...


def decode_text(path: Path, data: bytes) -> str:
    """UTF-8 text of ``data`` or a CorpusError naming the file and what is wrong with it."""
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{path}: looks like a binary file (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{path}: not valid UTF-8 (byte {exc.start}); convert it with e.g. `iconv -f latin1 -t utf-8`"
        ) from exc
    if not text.strip():
        raise CorpusError(f"{path}: the file is empty")
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.05 * min(len(text), 8192):
        raise CorpusError(f"{path}: too many control characters to be a text document")
    return text
