"""Build a document's text block by block, so every block, section and page offset indexes into it exactly."""

from __future__ import annotations

import re

from qa.documents import Block, BlockKind, Reference, Section
from qa.structure import _set_ends, _slug

_SPACE = re.compile(r"\s+")
ABSTRACT = "Abstract"


def clean(text: str) -> str:
    """One line of text: runs of whitespace (newlines, no-break and thin spaces) become one space."""
    return _SPACE.sub(" ", text).strip()


class TextBuilder:
    """Appends headings and blocks, opening sections by level; blocks before any heading go to an Abstract."""

    def __init__(self, front_title: str = ABSTRACT) -> None:
        self.front_title = front_title
        self.parts: list[str] = []
        self.pos = 0
        self.blocks: list[Block] = []
        self.roots: list[Section] = []
        self.stack: list[Section] = []
        self.pages: list[int] = []
        self.references: list[Reference] = []
        self._used: set[str] = set()

    def _write(self, text: str, sep: str = "\n\n") -> tuple[int, int]:
        if self.parts:
            self.parts.append(sep)
            self.pos += len(sep)
        start = self.pos
        self.parts.append(text)
        self.pos += len(text)
        return start, self.pos

    def new_page(self) -> None:
        """The next text written starts a new page (offsets of page starts, for ``Document.page_at``)."""
        self.pages.append(self.pos + (2 if self.parts else 0))

    def heading(self, title: str, level: int, *, number: str | None = None, kind: str = "section") -> Section:
        title = clean(title)
        start, end = self._write(title)
        base = _slug(f"{number} {title}" if number and not title.startswith(number) else title)
        sid, n = base, 2
        while sid in self._used:
            sid, n = f"{base}-{n}", n + 1
        self._used.add(sid)
        section = Section(sid, title, max(1, level), start, end, number, kind)  # type: ignore[arg-type]
        while self.stack and self.stack[-1].level >= section.level:
            self.stack.pop()
        (self.stack[-1].children if self.stack else self.roots).append(section)
        self.stack.append(section)
        self.blocks.append(Block("heading", start, end, sid))
        return section

    @property
    def section(self) -> Section | None:
        return self.stack[-1] if self.stack else None

    def block(self, text: str, kind: BlockKind = "body", *, sep: str = "\n\n") -> tuple[int, int] | None:
        """Append one block (already cleaned; table blocks keep their newlines); empty text is dropped."""
        if not text.strip():
            return None
        if not self.stack:
            self.heading(self.front_title, 1, kind="abstract" if self.front_title == ABSTRACT else "section")
        start, end = self._write(text, sep)
        self.blocks.append(Block(kind, start, end, self.stack[-1].id))
        return start, end

    def reference(self, ref: Reference) -> None:
        span = self.block(f"{ref.label}. {ref.text}" if ref.label else ref.text, "reference", sep="\n")
        if span:
            ref.start, ref.end = span
        self.references.append(ref)

    def build(self) -> tuple[str, list[Block], list[Section]]:
        text = "".join(self.parts)
        _set_ends(self.roots, self.blocks)
        return text, self.blocks, self.roots
