"""PDF twins of the XML papers: render each JATS article as a two-column PDF, read it back, compare.

No paper in shared/papers comes both as PDF and XML, so this renders one: the JATS reader's text laid out
in two columns (reportlab), with a running header, "Page N of M" footers, line ends hyphenated, headings
and captions in their own type. The PDF reader's text is then compared with the JATS reader's text
(character level, whitespace runs as one space) and their section titles in reading order.

    .venv/bin/python bench/pdf_twins.py [--papers ../shared/papers] [--out /tmp/pdf-twins]

writes bench/results/pdf_twins.json. Bar: agreement >= 0.97 on each article and the same section titles.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.documents import Section  # noqa: E402
from qa.readers.base import ParsedText  # noqa: E402
from qa.readers.jats import JatsReader  # noqa: E402
from qa.readers.pdf import PdfReader  # noqa: E402

# shared/ sits beside the checkout (or beside the folder of git worktrees)
SHARED = next(
    (p / "shared" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared").is_dir()),
    ROOT.parent / "shared",
)
PAGE_W, PAGE_H = 595.0, 842.0  # A4 in points
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 48.0, 64.0, 60.0
GUTTER = 18.0
COL_W = (PAGE_W - 2 * MARGIN_X - GUTTER) / 2
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu")]
# (font, size, leading) per block kind; headings by level
STYLES = {
    "body": ("Serif", 9.0, 11.0),
    "caption": ("Serif-Italic", 8.5, 10.0),
    "table": ("Sans", 7.5, 9.0),
    "reference": ("Serif", 7.5, 9.0),
    1: ("Sans-Bold", 12.0, 15.0),
    2: ("Sans-Bold", 10.5, 13.0),
    3: ("Serif-Bold", 9.5, 12.0),
    4: ("Serif-BoldItalic", 9.0, 11.0),
}


def register_fonts() -> None:
    """DejaVu (Greek, math signs) where installed, else reportlab's own Vera (Latin only)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    dejavu = next((d for d in FONT_DIRS if (d / "DejaVuSerif.ttf").exists()), None)
    if dejavu:
        files = {
            "Serif": "DejaVuSerif.ttf",
            "Serif-Italic": "DejaVuSerif-Italic.ttf",
            "Serif-Bold": "DejaVuSerif-Bold.ttf",
            "Serif-BoldItalic": "DejaVuSerif-BoldItalic.ttf",
            "Sans": "DejaVuSans.ttf",
            "Sans-Bold": "DejaVuSans-Bold.ttf",
        }
        for name, file in files.items():
            pdfmetrics.registerFont(TTFont(name, str(dejavu / file)))
        return
    import reportlab

    vera = Path(reportlab.__file__).parent / "fonts"
    files = {
        "Serif": "Vera.ttf",
        "Serif-Italic": "VeraIt.ttf",
        "Serif-Bold": "VeraBd.ttf",
        "Serif-BoldItalic": "VeraBI.ttf",
        "Sans": "Vera.ttf",
        "Sans-Bold": "VeraBd.ttf",
    }
    for name, file in files.items():
        pdfmetrics.registerFont(TTFont(name, str(vera / file)))


def _levels(sections: list[Section]) -> dict[str, int]:
    out: dict[str, int] = {}
    stack = list(sections)
    while stack:
        s = stack.pop()
        out[s.id] = s.level
        stack.extend(s.children)
    return out


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy line breaking; a long word that does not fit is hyphenated (or broken after its own hyphen)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[str] = []
    cur = ""
    for word in text.split():
        trial = f"{cur} {word}" if cur else word
        if stringWidth(trial, font, size) <= width:
            cur = trial
            continue
        head, tail = _hyphenate(cur, word, font, size, width)
        if head:
            lines.append(f"{cur} {head}" if cur else head)
            cur = tail
        else:
            if cur:
                lines.append(cur)
            cur = word
        while stringWidth(cur, font, size) > width:  # a word wider than the column
            cut = len(cur)
            while cut > 1 and stringWidth(cur[:cut] + "-", font, size) > width:
                cut -= 1
            lines.append(cur[:cut] + "-")
            cur = cur[cut:]
    if cur:
        lines.append(cur)
    return lines


def _hyphenate(cur: str, word: str, font: str, size: float, width: float) -> tuple[str, str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    room = width - stringWidth(f"{cur} " if cur else "", font, size)
    if "-" in word[2:-2]:  # break after the word's own hyphen
        cut = word.rindex("-", 0, len(word) - 2) + 1
        while cut > 2 and stringWidth(word[:cut], font, size) > room:
            cut = word.rfind("-", 0, cut - 1) + 1
        if cut > 2 and stringWidth(word[:cut], font, size) <= room:
            return word[:cut], word[cut:]
    if len(word) < 7 or not re.fullmatch(r"[A-Za-z]+[.,;:)]?", word):
        return "", word
    for cut in range(len(word.rstrip(".,;:)")) - 3, 2, -1):
        if stringWidth(word[:cut] + "-", font, size) <= room:
            return word[:cut] + "-", word[cut:]
    return "", word


class TwoColumn:
    """A reportlab canvas filled column by column; the title block spans both columns on page 1."""

    def __init__(self, path: Path, header: str) -> None:
        from reportlab.pdfgen.canvas import Canvas

        self.canvas = Canvas(str(path), pagesize=(PAGE_W, PAGE_H), invariant=1)
        self.header = header
        self.page = 1
        self.col = 0
        self.y = PAGE_H - MARGIN_TOP
        self.top = self.y

    def _furniture(self) -> None:
        c = self.canvas
        c.setFont("Sans", 7.5)
        c.drawString(MARGIN_X, PAGE_H - 36, self.header)

    def spanning(self, text: str, font: str, size: float, leading: float) -> None:
        for line in wrap(text, font, size, PAGE_W - 2 * MARGIN_X):
            self.canvas.setFont(font, size)
            self.canvas.drawString(MARGIN_X, self.y - size, line)
            self.y -= leading
        self.y -= leading * 0.8
        self.top = self.y

    def _next_column(self) -> None:
        if self.col == 0:
            self.col = 1
            self.y = self.top
            return
        self.canvas.showPage()
        self.page += 1
        self.col = 0
        self.y = self.top = PAGE_H - MARGIN_TOP

    def paragraph(self, text: str, font: str, size: float, leading: float, gap: float, keep: int = 1) -> None:
        lines = wrap(text, font, size, COL_W)
        if self.y - leading * min(len(lines), keep + 1) < MARGIN_BOTTOM:
            self._next_column()
        x = MARGIN_X + self.col * (COL_W + GUTTER)
        for line in lines:
            if self.y - leading < MARGIN_BOTTOM:
                self._next_column()
                x = MARGIN_X + self.col * (COL_W + GUTTER)
            self.canvas.setFont(font, size)
            self.canvas.drawString(x, self.y - size, line)
            self.y -= leading
        self.y -= gap

    def save(self) -> int:
        self.canvas.showPage()
        self.canvas.save()
        return self.page


def render(parsed: ParsedText, path: Path) -> int:
    """Write ``parsed`` as a two-column PDF at ``path``; returns the page count."""
    register_fonts()
    meta = parsed.meta
    first = (meta.get("authors") or ["Anonymous"])[0].split()[-1]
    header = f"{first} et al. {meta.get('journal') or ''} ({meta.get('year') or ''})"
    # two passes: the page count is known only after laying out, and the footers say "Page N of M"
    pages = _lay_out(parsed, path, header, None)
    _lay_out(parsed, path, header, pages)
    return pages


def _lay_out(parsed: ParsedText, path: Path, header: str, total: int | None) -> int:
    doc = TwoColumn(path, header)
    orig_show = doc.canvas.showPage

    def show_page() -> None:
        doc._furniture()
        c = doc.canvas
        c.setFont("Sans", 7.5)
        label = f"Page {c.getPageNumber()} of {total or '?'}"
        c.drawCentredString(PAGE_W / 2, 30, label)
        orig_show()

    doc.canvas.showPage = show_page  # type: ignore[method-assign]
    doc.spanning(parsed.meta.get("title") or "Untitled", "Sans-Bold", 16, 19)
    doc.spanning(", ".join(parsed.meta.get("authors") or []), "Sans", 10, 12.5)
    levels = _levels(parsed.sections)
    for block in parsed.blocks:
        text = parsed.text[block.start : block.end]
        if block.kind == "heading":
            font, size, leading = STYLES[min(levels.get(block.section_id, 1), 4)]
            doc.paragraph(text, font, size, leading, leading * 0.4, keep=2)
        elif block.kind == "table":
            font, size, leading = STYLES["table"]
            for row in text.split("\n"):
                doc.paragraph(row, font, size, leading, 0)
            doc.y -= leading
        else:
            font, size, leading = STYLES[block.kind]
            doc.paragraph(text, font, size, leading, leading * 0.8)
    return doc.save()


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def section_titles(sections: list[Section]) -> list[str]:
    out: list[str] = []
    for s in sections:
        out.append(s.title)
        out.extend(section_titles(s.children))
    return out


def agreement(a: str, b: str) -> float:
    """1 - normalised edit distance (rapidfuzz), else difflib's ratio."""
    try:
        from rapidfuzz.distance import Levenshtein

        return float(Levenshtein.normalized_similarity(a, b))
    except ImportError:  # pragma: no cover
        from difflib import SequenceMatcher

        return SequenceMatcher(None, a, b, autojunk=False).ratio()


def compare(xml: Path, out: Path) -> dict[str, object]:
    parsed = JatsReader().read(xml)
    pdf = out / f"{xml.stem}.pdf"
    started = time.perf_counter()
    pages = render(parsed, pdf)
    rendered = time.perf_counter() - started
    started = time.perf_counter()
    back = PdfReader().read(pdf)
    read = time.perf_counter() - started
    a, b = normalise(parsed.text), normalise(back.text)
    xml_titles, pdf_titles = section_titles(parsed.sections), section_titles(back.sections)
    return {
        "article": xml.name,
        "pages": pages,
        "xml_chars": len(a),
        "pdf_chars": len(b),
        "agreement": round(agreement(a, b), 5),
        "same_section_titles": xml_titles == pdf_titles,
        "sections": len(xml_titles),
        "section_title_differences": [[x, y] for x, y in zip(xml_titles, pdf_titles, strict=False) if x != y][
            :10
        ]
        + (
            [["(count)", f"{len(xml_titles)} vs {len(pdf_titles)}"]]
            if len(xml_titles) != len(pdf_titles)
            else []
        ),
        "title_read_back": back.meta.get("title") == parsed.meta.get("title"),
        "authors_read_back": back.meta.get("authors") == parsed.meta.get("authors"),
        "references": [len(parsed.references), len(back.references)],
        "render_seconds": round(rendered, 2),
        "read_seconds": round(read, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=Path, default=SHARED / "papers")
    ap.add_argument("--out", type=Path, default=Path("/tmp/pdf-twins"))
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "pdf_twins.json")
    ap.add_argument("--bar", type=float, default=0.97)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    articles = sorted(args.papers.glob("*.xml"))
    if not articles:
        raise SystemExit(f"no .xml articles in {args.papers}")
    for xml in articles:
        row = compare(xml, args.out)
        rows.append(row)
        print(
            f"{row['article']:50s} pages {row['pages']:3d}  agreement {row['agreement']:.4f}  "
            f"same section titles: {row['same_section_titles']}",
            flush=True,
        )
    passed = all(float(r["agreement"]) >= args.bar and r["same_section_titles"] for r in rows)  # type: ignore[arg-type]
    result = {"bar": args.bar, "passed": passed, "command": "python bench/pdf_twins.py", "articles": rows}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"bar {args.bar}: {'met' if passed else 'NOT met'}; written to {args.results}")


if __name__ == "__main__":
    main()
