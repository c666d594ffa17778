"""Plain-text reader: the layout analysis recovers headings, captions and table text."""

from __future__ import annotations

from pathlib import Path

from qa.readers.base import ParsedText, decode_text
from qa.readers.text_meta import stated_metadata
from qa.structure import analyze


class TextReader:
    name = "text"
    suffixes: tuple[str, ...] = (".txt", ".text")

    def read(self, path: Path) -> ParsedText:
        text = decode_text(path, path.read_bytes())
        blocks, sections = analyze(text)
        return ParsedText(text, blocks, sections, stated_metadata(text))
