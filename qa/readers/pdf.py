"""PDF reader (pdfminer.six): two-column reading order, running headers dropped, headings from font styles.

Lines come from pdfminer's layout analysis; this module orders them (full-width lines break the page into
bands, each band read left column then right), drops lines repeated in the page margins and bare page
numbers, joins lines into paragraphs (hyphenation undone where the document itself spells the word
unhyphenated), and takes headings from the font styles that differ from the body text's.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.documents import Reference
from qa.errors import CorpusError
from qa.readers.base import BACK_MATTER, ParsedText, abstract_parts, is_back_matter
from qa.readers.builder import ABSTRACT, TextBuilder, clean
from qa.readers.pdf_meta import front_metadata, glue, licence

log = logging.getLogger(__name__)
# pdfminer warns about every odd colour operator of publishers' PDFs; its real failures raise instead
logging.getLogger("pdfminer").setLevel(logging.ERROR)

LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
CAPTION = re.compile(r"^(?:Supplementary\s+)?(?:Figure|Fig\.?|Table)\s*S?\d+[A-Za-z]?(?:\s*[|.:]|\s+[A-Z(])")
REFERENCES = re.compile(r"^(references|bibliography|literature cited|references and notes)$", re.I)
# the standard section names of research articles: a heading even when set smaller than the body text
# (BMC's back matter: "References", "Competing interests" in 7.5 pt beside 9.8 pt body text)
NAMED_HEADING = re.compile(
    r"^(?:\d{1,2}\.?\s+)?(?:abstract|summary|background|introduction|(?:materials and |patients and )?methods|"
    r"methodology|results(?: and discussion)?|discussion|conclusions?|references|bibliography|literature cited|"
    r"acknowledge?ments?|competing interests?|conflicts? of interests?|declarations?(?: of interests?)?|"
    r"authors?[’'`]?s?[’'`]? contributions?|author details|author information|funding|abbreviations|"
    r"additional files?|supplementary (?:information|material|data)|data availability(?: statement)?|"
    r"availability of data and materials|ethics (?:approval|statement)(?: and consent to participate)?|"
    r"consent for publication)$",
    re.I,
)
REF_START = re.compile(r"^\[?(\d{1,3})[.\]](?:\s+\S|\s*$)")  # "12. Author", "[12] Author", a bare "12."
FRONT_END = re.compile(r"^(abstract|summary|background|introduction|\d\.?\s+introduction)$", re.I)
BADGE = re.compile(r"^check for updates$", re.I)  # the Crossmark badge publishers stamp on page 1
MARGIN = 0.09  # share of the page height at top and bottom where running headers and page numbers live
PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s+of\s+\d{1,4})?$", re.I)
_MIN_CHARS_PER_PAGE = 40


@dataclass
class Line:
    page: int
    x0: float
    x1: float
    top: float
    bottom: float
    text: str
    size: float
    font: str
    column: str = "span"  # left | right | span
    chars: int = 1

    @property
    def style(self) -> tuple[float, str]:
        return (round(self.size, 1), self.font)


def _font(name: str) -> str:
    return name.split("+", 1)[-1]  # subset prefix "ABCDEF+" dropped


def _lines(path: Path) -> tuple[list[list[Line]], list[tuple[float, float]], Any]:
    try:
        from pdfminer.converter import PDFPageAggregator
        from pdfminer.layout import LAParams, LTChar, LTTextContainer, LTTextLineHorizontal
        from pdfminer.pdfdocument import PDFDocument
        from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
        from pdfminer.pdfpage import PDFPage
        from pdfminer.pdfparser import PDFParser
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise CorpusError(f"{path}: reading PDF needs pdfminer.six (pip install pdfminer.six)") from exc
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    pages: list[list[Line]] = []
    sizes: list[tuple[float, float]] = []
    with open(path, "rb") as fh:
        if not fh.read(1024).lstrip().startswith(b"%PDF-"):
            raise CorpusError(f"{path}: not a PDF file (no %PDF- header)")
        fh.seek(0)
        try:
            doc = PDFDocument(PDFParser(fh))
        except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
            raise CorpusError(f"{path}: the PDF is encrypted (password-protected); decrypt it first") from exc
        except Exception as exc:  # pdfminer raises many kinds for damaged files
            raise CorpusError(f"{path}: corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from exc
        if getattr(doc, "encryption", None) and not doc.is_extractable:
            raise CorpusError(f"{path}: the PDF is encrypted and forbids text extraction")
        rsrc = PDFResourceManager()
        device = PDFPageAggregator(rsrc, laparams=LAParams(line_margin=0.3, char_margin=1.5))
        interp = PDFPageInterpreter(rsrc, device)
        try:
            for number, page in enumerate(PDFPage.create_pages(doc), 1):
                interp.process_page(page)
                layout = device.get_result()
                sizes.append((layout.width, layout.height))
                found: list[Line] = []
                stack = list(layout)
                while stack:
                    el = stack.pop()
                    if isinstance(el, LTTextLineHorizontal):
                        chars = [c for c in el if isinstance(c, LTChar) and c.upright]
                        if not chars or len(chars) < 0.5 * sum(isinstance(c, LTChar) for c in el):
                            continue  # rotated text (badges, margin notes)
                        text = el.get_text().translate(LIGATURES)
                        text = re.sub(r"\(cid:\d+\)", "•", text).replace("\u00ad", "-")
                        if not text.strip() or BADGE.match(text.strip()):
                            continue
                        size = statistics.median(c.size for c in chars)
                        font = Counter(_font(c.fontname) for c in chars).most_common(1)[0][0]
                        top = layout.height - el.y1
                        bottom = layout.height - el.y0
                        found.append(
                            Line(number, el.x0, el.x1, top, bottom, text, size, font, chars=len(chars))
                        )
                    elif isinstance(el, LTTextContainer):
                        stack.extend(el)
                pages.append(_merge_fragments(found, layout.width))
        except CorpusError:
            raise
        except Exception as exc:
            raise CorpusError(f"{path}: corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from exc
    return pages, sizes, doc


def _merge_fragments(lines: list[Line], width: float) -> list[Line]:
    """Pieces of one printed line that pdfminer split (a reference label "12." and its text, an author name
    and its affiliation marks, words spread by justification) joined left to right into one line.

    Two pieces join when they share most of their height and the gap between them is under two body
    characters; nothing joins across the page's centre gutter."""
    mid = width / 2
    out: list[Line] = []
    for ln in sorted(lines, key=lambda ln: (ln.x0, ln.top)):
        for other in out:
            overlap = min(other.bottom, ln.bottom) - max(other.top, ln.top)
            low = min(other.bottom - other.top, ln.bottom - ln.top)
            gap = ln.x0 - other.x1
            crosses = other.x1 <= mid + 6 < ln.x0 and ln.x0 >= mid - 6 and gap > 6
            if low > 0 and overlap >= 0.6 * low and -1 <= gap < 2 * max(other.size, ln.size) and not crosses:
                main = other if other.chars >= ln.chars else ln
                other.text = other.text.rstrip("\n") + " " + ln.text.lstrip()
                other.x1 = ln.x1
                other.top, other.bottom = min(other.top, ln.top), max(other.bottom, ln.bottom)
                other.size, other.font = main.size, main.font
                other.chars += ln.chars
                break
        else:
            out.append(ln)
    return out


def _drop_furniture(pages: list[list[Line]], sizes: list[tuple[float, float]]) -> None:
    """Running headers and footers (the same text in the margins of several pages) and page numbers."""

    def key(line: Line) -> str:
        return re.sub(r"\d+", "#", clean(line.text).lower())

    def in_margin(line: Line, height: float) -> bool:
        return line.bottom < height * MARGIN * 1.3 or line.top > height * (1 - MARGIN)

    counts: Counter[str] = Counter()
    for lines, (_, h) in zip(pages, sizes, strict=True):
        counts.update({key(ln) for ln in lines if in_margin(ln, h)})
    repeated = {k for k, n in counts.items() if n >= max(2, 0.3 * len(pages))}
    for i, (lines, (_, h)) in enumerate(zip(pages, sizes, strict=True)):
        pages[i] = [
            ln
            for ln in lines
            if not (in_margin(ln, h) and (key(ln) in repeated or PAGE_NUMBER.match(clean(ln.text))))
        ]


def _reading_order(lines: list[Line], width: float) -> list[Line]:
    """Top to bottom in bands cut by full-width lines; within a band the left column, then the right."""
    mid = width / 2
    for ln in lines:
        ln.column = "left" if ln.x1 <= mid + 6 else "right" if ln.x0 >= mid - 6 else "span"
    lines = sorted(lines, key=lambda ln: (ln.top, ln.x0))
    out: list[Line] = []
    band: list[Line] = []

    def flush() -> None:
        out.extend(sorted((ln for ln in band if ln.column == "left"), key=lambda ln: (ln.top, ln.x0)))
        out.extend(sorted((ln for ln in band if ln.column == "right"), key=lambda ln: (ln.top, ln.x0)))
        band.clear()

    for ln in lines:
        if ln.column == "span":
            flush()
            out.append(ln)
        else:
            band.append(ln)
    flush()
    return out


@dataclass
class Para:
    lines: list[Line]

    @property
    def text(self) -> str:
        return clean(" ".join(ln.text for ln in self.lines))

    @property
    def style(self) -> tuple[float, str]:
        return Counter(ln.style for ln in self.lines).most_common(1)[0][0]


def _paragraphs(lines: list[Line], body: tuple[float, str]) -> list[Para]:
    paras: list[Para] = []
    gaps: dict[tuple[float, str], list[float]] = {}
    for a, b in zip(lines, lines[1:], strict=False):
        if a.page == b.page and a.column == b.column and a.style == b.style and b.top > a.top:
            gaps.setdefault(a.style, []).append(b.top - a.top)
    leading = statistics.median(gaps[body]) if gaps.get(body) else body[0] * 1.2
    # a style set in larger type or looser leading than the body (Nature's abstract) keeps its own spacing
    spacing = {s: max(leading, statistics.median(g)) for s, g in gaps.items() if len(g) >= 5}
    for ln in lines:
        prev = paras[-1].lines[-1] if paras else None
        if prev is None:
            paras.append(Para([ln]))
            continue
        same_flow = (
            prev.page == ln.page
            and prev.column == ln.column
            and 0 < ln.top - prev.top < spacing.get(prev.style, leading) * 1.45
        )
        new_column = not (prev.page == ln.page and prev.column == ln.column)
        # a caption's bold lead ("Fig. 1 | Schematic ... a Azido-sugars can be meta-") runs on in regular type
        caption_runs_on = ln.style[0] == prev.style[0] and bool(CAPTION.match(paras[-1].text))
        style_change = ln.style != prev.style and not caption_runs_on
        indented = same_flow and ln.x0 > prev.x0 + body[0] * 0.8 and prev.x0 <= paras[-1].lines[0].x0 + 1
        ends = prev.text.rstrip().endswith((".", ":", "?", "!"))
        short_prev = prev.x1 < max(x.x1 for x in paras[-1].lines) - body[0] * 3
        continues = new_column and not ends and not style_change
        if (same_flow and not style_change and not indented and not (ends and short_prev)) or continues:
            paras[-1].lines.append(ln)
        else:
            paras.append(Para([ln]))
    return paras


def _join(lines: list[Line], words: set[str], sep: str = " ") -> tuple[str, list[tuple[int, int]]]:
    """Paragraph text with line-end hyphenation undone; (offset, page) where each later page starts."""
    out = ""
    marks: list[tuple[int, int]] = []
    page = lines[0].page
    for ln in lines:
        piece = clean(ln.text)
        if not piece:
            continue
        out = glue(out, piece, words, sep)
        if ln.page != page:
            marks.append((len(out) - len(piece), ln.page))
            page = ln.page
    return out, marks


def _word_set(pages: list[list[Line]]) -> set[str]:
    """The document's words, for undoing hyphenation. A line's first word is left out when it is the tail of
    a word broken at the line just above ("Assess-" over "ment"): it is no word of its own."""
    words: set[str] = set()
    for lines in pages:
        broken = [ln for ln in lines if ln.text.rstrip().endswith("-")]
        for ln in lines:
            text = ln.text.rstrip()
            found = re.findall(r"\w+(?:-\w+)*", text[:-1] if text.endswith("-") else text)
            if found and found[0][:1].islower() and any(_just_above(b, ln) for b in broken):
                found = found[1:]
            words.update(w.lower() for w in found)
    return words


def _just_above(upper: Line, lower: Line) -> bool:
    gap = lower.top - upper.bottom
    return -0.5 * lower.size < gap < lower.size and upper.x0 < lower.x1 and lower.x0 < upper.x1


def _front_matter(paras: list[Para]) -> set[int]:
    """Page-1 paragraphs before the abstract or the first long paragraph (names, dates, labels): never headings."""
    out: set[int] = set()
    for p in paras:
        if len(p.text) >= 300 or p.lines[0].page > 1 or FRONT_END.match(p.text):
            break
        out.add(id(p))
    return out


def _heading_levels(paras: list[Para], body: tuple[float, str]) -> dict[tuple[float, str], int]:
    """Heading styles ranked by size: a style counts only if most of its paragraphs look like headings
    (a list or reference font that happens to have short lines does not)."""
    seen: Counter[tuple[float, str]] = Counter(p.style for p in paras)
    like: Counter[tuple[float, str]] = Counter(p.style for p in paras if _heading_like(p, body))
    styles = {s for s, n in like.items() if n >= 0.7 * seen[s]}
    ranked = sorted(styles, key=lambda s: (-s[0], "bold" not in s[1].lower()))
    return {s: min(i + 1, 4) for i, s in enumerate(ranked)}


def _heading_like(p: Para, body: tuple[float, str]) -> bool:
    text = p.text
    if p.style == body or len(p.lines) > 5 or len(text) > 250 or len(text.split()) > 30:
        return False
    if p.style[0] < body[0] - 1.2 or CAPTION.match(text) or text.endswith((".", ",", ";", ":")):
        return False
    first = re.sub(r"^\d+(?:\.\d+)*\.?\s+", "", text).split(" ", 1)[0]
    return text[:1].isalnum() and any(c.isupper() for c in first)  # "cGAS-STING pathway", not "the ..."


def _runs_on(p: Para, nxt: Para | None) -> bool:
    """``p`` is the first line of a sentence that goes on in lower case in the next paragraph right under it
    (Nature's run-in "Supplementary information The online version contains" / "supplementary ...")."""
    return nxt is not None and nxt.text[:1].islower() and _just_above(p.lines[-1], nxt.lines[0])


def _run_in_back_matter(p: Para) -> bool:
    """A back-matter statement that opens with its label in bold on the same line ("Peer review information
    Nature Communications thanks ..."): a paragraph, not a heading ("Funding source" stays a heading)."""
    m = BACK_MATTER.match(p.text)
    return m is not None and len(p.text[m.end() :].split()) >= 3


def _named_heading(p: Para, body: tuple[float, str]) -> bool:
    """A one-line paragraph out of the body style whose text is a standard section name."""
    return len(p.lines) == 1 and p.style != body and bool(NAMED_HEADING.match(p.text.rstrip(":")))


def _in_abstract(builder: TextBuilder) -> bool:
    return bool(builder.stack) and builder.stack[0].kind == "abstract"


def _opening_section(
    builder: TextBuilder, p: Para, body: tuple[float, str], abstract_style: tuple[float, str] | None
) -> str | None:
    """The section an unheaded article opening needs before ``p``: "Abstract" for the first long page-1
    paragraph when no heading came yet (Hindawi's "Objectives. ..." block), "Introduction" for the first
    body-style paragraph after an abstract set in its own type (Nature's unheaded introduction)."""
    section = builder.section
    if abstract_style is not None:
        if section is not None and _in_abstract(builder) and p.style == body != abstract_style:
            return "Introduction"
        return None
    if (section is None or section.title == "Front matter") and p.lines[0].page == 1 and len(p.text) >= 300:
        return ABSTRACT
    return None


class PdfReader:
    name = "pdf"
    suffixes: tuple[str, ...] = (".pdf",)

    def read(self, path: Path) -> ParsedText:
        pages, sizes, doc = _lines(path)
        chars = sum(len(ln.text.strip()) for lines in pages for ln in lines)
        if not pages or chars < _MIN_CHARS_PER_PAGE * len(pages) / 4:
            raise CorpusError(f"{path}: no text layer; OCR it first (a scanned PDF?)")
        words = _word_set(pages)
        meta, skip = front_metadata(path, pages, doc, words)
        _drop_furniture(pages, sizes)
        ordered = [ln for lines, (w, _) in zip(pages, sizes, strict=True) for ln in _reading_order(lines, w)]
        ordered = [ln for ln in ordered if id(ln) not in skip]
        body = Counter(ln.style for ln in ordered for _ in ln.text).most_common(1)[0][0]
        paras = _paragraphs(ordered, body)
        front = _front_matter(paras)
        levels = _heading_levels([p for p in paras if id(p) not in front], body)
        builder = TextBuilder(front_title="Front matter")  # title page lines before the first heading
        page = 0
        in_refs = False
        ref_paras: list[list[Line]] = []

        def flush_refs(page: int) -> int:
            for entry in _split_references(ref_paras):
                ref_text, _ = _join(entry, words)
                page = self._pages(builder, page, entry[0].page, 0)
                m = REF_START.match(ref_text)
                number = int(m.group(1)) if m else None
                body_text = ref_text[m.end(1) + 1 :].strip() if m else ref_text
                builder.reference(Reference(number, str(number) if number else "", body_text))
            ref_paras.clear()
            return page

        headings = {
            id(p)
            for p, nxt in zip(paras, [*paras[1:], None], strict=True)
            if id(p) not in front
            and ((p.style in levels and _heading_like(p, body)) or _named_heading(p, body))
            and not _runs_on(p, nxt)
            and not _run_in_back_matter(p)
        }
        abstract_style: tuple[float, str] | None = None  # set while in an abstract this reader opened
        for p in paras:
            text = p.text
            heading = id(p) in headings
            if not heading and not in_refs and headings:
                opening = _opening_section(builder, p, body, abstract_style)
                if opening:
                    page = self._pages(builder, page, p.lines[0].page, 0)
                    builder.heading(opening, 1, kind="abstract" if opening == ABSTRACT else "section")
                    abstract_style = p.style if opening == ABSTRACT else None
            if heading:
                abstract_style = None
                page = flush_refs(page)
                title, _ = _join(p.lines, words)
                in_refs = bool(REFERENCES.match(title))
                kind = "abstract" if title.lower() == "abstract" else "references" if in_refs else "section"
                num = re.match(r"(\d+(?:\.\d+)*)\.?\s", title)
                level = len(num.group(1).split(".")) if num else levels.get(p.style, 1)
                parent = builder.section
                if kind == "section" and (
                    is_back_matter(title)
                    or (parent is not None and parent.kind == "back" and parent.level < level)
                ):
                    kind = "back"  # "Competing interests", and what a back-matter section holds
                page = self._pages(builder, page, p.lines[0].page, 0)
                builder.heading(title, level, number=num.group(1) if num else None, kind=kind)
                continue
            if in_refs:
                ref_paras.append(p.lines)
                continue
            kind = "caption" if CAPTION.match(text) else "table" if " | " in text else "body"
            joined, marks = _join(p.lines, words, "\n" if kind == "table" else " ")
            page = self._pages(builder, page, p.lines[0].page, 0)
            parts = abstract_parts(joined) if _in_abstract(builder) and kind == "body" and not marks else []
            for label, start, end in parts:  # "Objectives. ... Methods. ...": each part its own section
                builder.heading(label, 2)
                builder.block(joined[start:end].strip())
            if parts:
                continue
            span = builder.block(joined, kind)  # type: ignore[arg-type]
            if span:
                for offset, pg in marks:
                    while page < pg:
                        builder.pages.append(span[0] + offset)
                        page += 1
        page = flush_refs(page)
        text, blocks, sections = builder.build()
        meta["licence"] = licence(text) or meta.get("licence")
        while page < len(pages):
            builder.pages.append(len(text))
            page += 1
        return ParsedText(text, blocks, sections, meta, builder.pages, builder.references)

    @staticmethod
    def _pages(builder: TextBuilder, current: int, page: int, _: int) -> int:
        """Record page starts up to ``page`` at the next block's offset."""
        while current < page:
            builder.new_page()
            current += 1
        return current


def _split_references(paras: list[list[Line]]) -> list[list[Line]]:
    """One entry per numbered start ("12." or "[12]", the next number in the list); unnumbered lists
    (author-year) one entry per paragraph. A numbered entry may run on across paragraphs and columns, but a
    paragraph in another type size than the list's (a "Cite this article" box, a publisher's notice after the
    list) is an entry of its own, not the tail of the last reference."""
    entries: list[list[Line]] = []
    expected: int | None = None
    list_size: float | None = None  # the entries' type size (their fonts vary: italic journal names)
    for lines in paras:
        size = Counter(ln.style[0] for ln in lines).most_common(1)[0][0]
        for i, ln in enumerate(lines):
            m = REF_START.match(clean(ln.text))
            number = int(m.group(1)) if m else None
            numbered = number is not None and (expected is None or number == expected)
            foreign = i == 0 and expected is not None and not numbered and list_size not in (None, size)
            if not entries or numbered or (i == 0 and expected is None) or foreign:
                entries.append([ln])
                if numbered:
                    expected, list_size = (number or 0) + 1, size
                elif foreign:
                    expected = None
            else:
                entries[-1].append(ln)
    return entries
