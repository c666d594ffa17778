"""Markdown reader: '#' headings give the section levels; pipe tables are table text."""

from __future__ import annotations

from pathlib import Path

from qa.readers.base import ParsedText, decode_text
from qa.readers.text_meta import stated_metadata
from qa.structure import analyze


class MarkdownReader:
    name = "markdown"
    suffixes: tuple[str, ...] = (".md", ".markdown")

    def read(self, path: Path) -> ParsedText:
        text = decode_text(path, path.read_bytes())
        blocks, sections = analyze(text, markdown=True)
        return ParsedText(text, blocks, sections, stated_metadata(text))
