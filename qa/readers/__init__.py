"""Readers turn a file into source text plus its structure; new formats plug in by registering one."""

from __future__ import annotations

from pathlib import Path

from qa.readers.base import ParsedText, Reader, decode_text
from qa.readers.jats import JatsReader
from qa.readers.markdown import MarkdownReader
from qa.readers.pdf import PdfReader
from qa.readers.text import TextReader

READERS: list[Reader] = [TextReader(), MarkdownReader(), JatsReader(), PdfReader()]


def reader_for(path: Path) -> Reader | None:
    """The registered reader for ``path``'s suffix, or None when no reader handles it."""
    suffix = path.suffix.lower()
    return next((r for r in READERS if suffix in r.suffixes), None)


def supported_suffixes() -> list[str]:
    return sorted({s for r in READERS for s in r.suffixes})


__all__ = ["READERS", "ParsedText", "Reader", "decode_text", "reader_for", "supported_suffixes"]
