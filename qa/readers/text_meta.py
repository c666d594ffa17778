"""A plain-text paper's title, authors, journal, year and DOI, where its first lines state them.

A text exported from a paper often opens with its title line, a line of author names, a citation line
("Frontiers in Oncology 2023; 13:1210245"), "doi: 10.3389/..." and labelled lines ("Title: ...",
"Authors: ..."), before the abstract. Only what those lines say is taken: a text that opens with its
abstract states no title, and gets none.
"""

from __future__ import annotations

import re
from typing import Any

from qa.readers.builder import clean
from qa.readers.pdf_meta import CITATION_LINE, DOI, licence, split_authors, stated_year

HEAD_LINES = 12  # the first lines looked at
LONGEST_TITLE = 300  # characters; a longer first line is prose (an abstract), not a title
_LABELLED = re.compile(r"^(title|authors?|by|journal|source|year|published|doi)\s*[:：]\s*(.+)$", re.I)
_VOLUME = re.compile(r"^Vol(?:ume|\.)\s*\d+", re.I)
_SECTION_START = re.compile(
    r"^(?:\d{1,2}\.?\s+)?(?:abstract|summary|background|introduction|keywords?|objectives?)\b", re.I
)


def _head(text: str) -> list[str]:
    """The non-empty lines before the body: up to the first section name or line of prose."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = clean(raw.lstrip("#").strip())
        if not line:
            continue
        if _SECTION_START.match(line) or len(line) > LONGEST_TITLE or len(lines) >= HEAD_LINES:
            break
        lines.append(line)
    return lines


def _title_like(line: str) -> bool:
    words = line.split()
    return (
        len(words) >= 3
        and line[:1].isupper()
        and not line.endswith((".", ",", ";"))
        and not DOI.search(line)
        and not re.search(r"\b(?:19|20)\d{2}\b.*\d+\s*[:(]", line)  # a citation line
    )


def _author_names(line: str) -> list[str]:
    """The names of a byline ("Nuala E. Tully, Karen M. Morgan, and Hannah M. McGee"): two or more names of
    two words or more ("Research Article" and a journal name are no byline)."""
    if DOI.search(line) or line.endswith("."):
        return []
    names = split_authors(line)
    return names if len(names) >= 2 and all(len(n.split()) >= 2 for n in names) else []


def stated_metadata(text: str) -> dict[str, Any]:
    """What the first lines of ``text`` state about the document (absent keys: not stated)."""
    head = _head(text)
    meta: dict[str, Any] = {}
    unlabelled: list[str] = []
    for line in head:
        m = _LABELLED.match(line)
        if not m:
            unlabelled.append(line)
            continue
        key, value = m.group(1).lower(), m.group(2).strip()
        if key == "title":
            meta["title"] = value
        elif key in ("author", "authors", "by"):
            meta["authors"] = split_authors(value)
        elif key in ("journal", "source"):
            meta["journal"] = value
        elif key in ("year", "published"):
            meta["year"] = stated_year(value)
        elif key == "doi" and (d := DOI.search(value)):
            meta["doi"] = d.group(1).rstrip(".,;)")
    names = [_author_names(line) for line in unlabelled]
    by = next((i for i, n in enumerate(names) if n), None)  # the byline
    if "authors" not in meta and by is not None:
        meta["authors"] = names[by]
    if "title" not in meta:  # the line above the byline, else the first line when it reads as a title
        above = unlabelled[by - 1] if by else unlabelled[0] if unlabelled and by is None else ""
        if above and _title_like(above):
            meta["title"] = above
    for i, line in enumerate(unlabelled):
        if "journal" in meta:
            break
        if c := CITATION_LINE.match(line):
            meta["journal"] = c.group("j").strip(" |,")
        elif i + 1 < len(unlabelled) and _VOLUME.match(unlabelled[i + 1]) and not names[i]:
            meta["journal"] = (
                line  # "Rehabilitation Research and Practice" over "Volume 2010, Article ID ..."
            )
    head_text = "\n".join(head)
    if "doi" not in meta and (d := DOI.search(head_text)):
        meta["doi"] = d.group(1).rstrip(".,;)")
    if "year" not in meta and len(meta) > 0 and (year := stated_year(head_text)):
        meta["year"] = year
    if "doi" in meta:
        meta["url"] = f"https://doi.org/{meta['doi']}"
    if found := licence(head_text):
        meta["licence"] = found
    return {k: v for k, v in meta.items() if v not in (None, "", [])}
