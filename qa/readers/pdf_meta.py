"""A PDF's title, authors, DOI, year and licence, read from its first page; the file's own metadata only
where it agrees with the page (publishers' XMP sometimes describes another article)."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.readers.builder import clean

if TYPE_CHECKING:
    from qa.readers.pdf import Line

DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)")
# a citation line naming the journal before year and volume: "BMC Health Services Research 2014, 14:1"
CITATION_LINE = re.compile(
    r"^(?:.*?\bet al\.?,?\s+)?(?P<j>[A-Z][\w&.’' -]+?)\s*[|,]?\s*\(?(?:19|20)\d{2}\)?[,;]?\s+\d+\s*[:(]"
)
_NAME_JUNK = re.compile(r"[\d*†‡§¶#✉✝]+")


def glue(out: str, piece: str, words: set[str], sep: str = " ") -> str:
    """``out`` and the next line ``piece`` joined, line-end hyphenation undone.

    A hyphen at a line end is kept when the next line starts with a capital or a digit ("PD-" "L1"), or when
    the document spells the word with it elsewhere and never without it ("small-molecule"); otherwise it is
    removed ("immu-" "notherapies" -> "immunotherapies").
    """
    if not out:
        return piece
    m = re.search(r"([A-Za-z0-9][\w-]*)-$", out)
    if not m:
        return out + sep + piece
    n = re.match(r"[a-z]\w*", piece)
    if not n or not out[-2].isalpha():
        return out + piece
    head, tail = m.group(1).lower(), n.group(0).lower()
    if f"{head}{tail}" in words:
        return out[:-1] + piece
    # spelled with the hyphen elsewhere, or two words of the document ("immune-" "stimulatory")
    if f"{head}-{tail}" in words or (head.rsplit("-", 1)[-1] in words and tail in words and len(tail) > 3):
        return out + piece
    return out[:-1] + piece


def _decode(value: Any) -> str:
    from pdfminer.pdftypes import resolve1
    from pdfminer.psparser import PSLiteral

    value = resolve1(value)
    if isinstance(value, bytes):
        if value.startswith(b"\xfe\xff"):
            return value[2:].decode("utf-16-be", "ignore")
        return value.decode("latin-1", "ignore")
    if isinstance(value, PSLiteral):
        return str(value.name)
    return str(value) if value is not None else ""


def file_metadata(doc: Any) -> dict[str, str]:
    """Title and DOI from the document information dictionary and the XMP packet, as the file states them."""
    out: dict[str, str] = {}
    try:
        from pdfminer.pdftypes import resolve1

        for info in doc.info or []:
            for key in ("Title", "Subject", "doi"):
                if key in info and _decode(info[key]).strip():
                    out.setdefault(key.lower(), clean(_decode(info[key])))
        xmp = resolve1(doc.catalog.get("Metadata"))
        data = xmp.get_data().decode("utf-8", "ignore") if xmp is not None else ""
    except Exception:  # metadata is a hint only; a damaged dictionary must not stop the reader
        return out
    m = re.search(r"<dc:title>.*?<rdf:li[^>]*>(.*?)</rdf:li>", data, re.S)
    if m:
        out["title"] = clean(re.sub(r"<[^>]+>", "", m.group(1)))
    m = re.search(r"<prism:doi>(.*?)</prism:doi>", data) or re.search(r"doi:(10\.\d{4,9}/[^<\s]+)", data)
    if m:
        out["doi"] = m.group(1).strip()
    m = re.search(r"<prism:publicationName>(.*?)</prism:publicationName>", data)
    if m:
        out["journal"] = clean(m.group(1))
    if "doi" not in out:
        m = DOI.search(out.get("subject", ""))
        if m:
            out["doi"] = m.group(1).rstrip(".,;)")
    return out


def _title_lines(first: list[Line], height: float) -> list[Line]:
    upper = [ln for ln in first if ln.top < height * 0.6 and len(ln.text.strip()) > 3]
    if not upper:
        return []
    biggest = max(ln.size for ln in upper)
    body = sorted(ln.size for ln in first)[len(first) // 2]
    if biggest < body + 1.5:
        return []
    lines = sorted((ln for ln in upper if abs(ln.size - biggest) < 0.6), key=lambda ln: ln.top)
    run = [lines[0]]
    for ln in lines[1:]:
        if ln.top - run[-1].bottom > biggest * 1.2:
            break
        run.append(ln)
    return run


def _author_lines(first: list[Line], title: list[Line]) -> list[Line]:
    """The byline under the title: lines in the first line's type that share its horizontal extent, so a
    sidebar beside it (Nature's "Received: ..." dates) neither joins nor ends it."""
    after = sorted((ln for ln in first if ln.top > title[-1].top + 1), key=lambda ln: ln.top)
    if not after:
        return []
    run = [after[0]]
    for ln in after[1:]:
        beside = ln.x1 < run[0].x0 - 2 or ln.x0 > max(r.x1 for r in run) + 2
        if beside and ln.style != run[0].style:
            continue
        if ln.style != run[0].style or ln.top - run[-1].bottom > ln.size * 1.0:
            break
        run.append(ln)
    text = clean(" ".join(ln.text for ln in run))
    names = split_authors(text)
    return run if len(text) < 600 and names and not text.endswith(".") else []


def split_authors(text: str) -> list[str]:
    parts = re.split(r",?\s+(?:and|&)\s+|,\s*|;\s*", _NAME_JUNK.sub("", text))
    names = [clean(p) for p in parts if clean(p)]
    good = [n for n in names if 1 <= len(n.split()) <= 6 and all(w[:1].isupper() for w in n.split())]
    return good if len(good) >= max(1, len(names) * 0.8) else []


def journal_name(first: list[Line], file_meta: dict[str, str]) -> str | None:
    """The journal as page 1 prints it: the file's Subject when the page shows it too (Hindawi, Springer
    Nature put the journal there), else a citation line ("BMC Health Services Research 2014, 14:1",
    "Nature Communications | (2023) 14:5049") or the line above "Volume 2010, Article ID ..."."""
    lines = [clean(ln.text) for ln in sorted(first, key=lambda ln: (ln.top, ln.x0))]
    page = " ".join(lines).lower()
    subject = re.split(r",?\s*doi:", file_meta.get("subject", ""), maxsplit=1, flags=re.I)[0].strip(" ,;")
    if 3 < len(subject) < 120 and subject.lower() in page:
        return subject
    for i, line in enumerate(lines):
        m = CITATION_LINE.match(line)
        if m and len(m.group("j").split()) <= 10:
            return m.group("j").strip(" |,")
        if i and re.match(r"^Vol(?:ume|\.)\s*\d+", line, re.I) and 3 < len(lines[i - 1]) < 120:
            return lines[i - 1]
    return None


def stated_year(text: str) -> int | None:
    for pattern in (
        r"(?:©|\(c\)|Copyright|Published(?: online)?:?)[^©]{0,40}?\b((?:19|20)\d{2})\b",
        r"\(((?:19|20)\d{2})\)",
        r"\b((?:19|20)\d{2}),\s*\d+:",
    ):
        m = re.search(pattern, text, re.I)
        if m:
            return int(m.group(1))
    years = [int(y) for y in re.findall(r"\b((?:19|20)\d{2})\b", text)]
    # the most frequent year; of years as frequent, the latest (a paper's own year is after what it cites).
    # A tie broken by set order would change with the process's string hashing, and with it the corpus
    # hash: a server would find its own index stale on every other start.
    return max(years, key=lambda y: (years.count(y), y)) if years else None


def licence(text: str) -> str | None:
    m = re.search(r"creativecommons\.org/licenses/([a-z-]+)/(\d\.\d)", re.sub(r"\s+", "", text), re.I)
    if m:
        return f"CC {m.group(1).upper()} {m.group(2)}"
    m = re.search(r"Creative\s+Commons\s+Attribution(?:[\s-]+(Non-?Commercial))?(?:\s+(\d\.\d))?", text, re.I)
    if m:
        return "CC BY" + ("-NC" if m.group(1) else "") + (f" {m.group(2)}" if m.group(2) else "")
    return None


def front_metadata(
    path: Path, pages: list[list[Line]], doc: Any, words: set[str] | None = None
) -> tuple[dict[str, Any], set[int]]:
    """(metadata, ids of the lines used for title and authors, which stay out of the text)."""
    first = pages[0] if pages else []
    height = max((ln.bottom for ln in first), default=800.0)
    file_meta = file_metadata(doc)
    title_lines = _title_lines(first, height)
    author_lines = _author_lines(first, title_lines) if title_lines else []
    joined = ""
    for ln in title_lines:
        joined = glue(joined, clean(ln.text), words or set())
    # an article-type label set in the title's type ("Research Article Patient ...")
    label = r"^(?:Research|Review|Original|Brief)\s+(?:Article|Report)\s+"
    page_title: str | None = re.sub(label, "", joined) or None
    first_text = " ".join(ln.text for ln in sorted(first, key=lambda ln: ln.top))
    all_text = " ".join(ln.text for lines in pages for ln in lines)
    agrees = bool(
        page_title
        and file_meta.get("title")
        and SequenceMatcher(None, page_title.lower(), file_meta["title"].lower()).ratio() > 0.8
    )
    meta: dict[str, Any] = {"title": page_title or file_meta.get("title")}
    if author_lines:
        meta["authors"] = split_authors(clean(" ".join(ln.text for ln in author_lines)))
    m = DOI.search(first_text)
    # the "Cite this article" box of the last page, its DOI after it (Nature) or just before it (BMC)
    cite = re.search(r"Cite this article[^\n]{0,400}?(10\.\d{4,9}/\S+)", all_text) or re.search(
        r"(10\.\d{4,9}/\S+)\s{0,20}Cite this article", all_text
    )
    if m:
        meta["doi"] = m.group(1).rstrip(".,;)")
    elif cite:
        meta["doi"] = cite.group(1).rstrip(".,;)")
    elif file_meta.get("doi") and (agrees or not page_title):
        meta["doi"] = file_meta["doi"]
    # the file's journal only when its title agrees with the page; its Subject only where page 1 shows it
    trusted = file_meta.get("journal") if agrees or not page_title else None
    meta["journal"] = trusted or journal_name(first, file_meta)
    meta["year"] = stated_year(first_text)
    meta["licence"] = licence(all_text)
    if meta.get("doi"):
        meta["url"] = f"https://doi.org/{meta['doi']}"
    return meta, {id(ln) for ln in [*title_lines, *author_lines]}
