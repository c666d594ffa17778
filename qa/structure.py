"""Layout analysis: recover headings and their nesting, the abstract, captions and table text from plain text.

Signals used, all generic: numbered headings ("2.1.1 Title") give their level; unnumbered headings nest
by chains (a heading directly followed by another heading is its parent) and by the usual top-level
names of scientific papers (Introduction, Methods, Conclusion ...); captions start "Figure N |" or
"Table N."; runs of short non-prose lines (an OCR'd table) are table text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.documents import Block, BlockKind, Section

CAPTION = re.compile(
    r"^\s*(?:Supplementary\s+)?(Figure|Fig\.?|Table|Box|Scheme)\s*([A-Z]?\d+[A-Za-z]?)\s*[|.:]"
)
NUMBERED = re.compile(r"^\s*(\d{1,2}(?:\.\d{1,2}){0,4})\.?\s+([A-Z].*)$")
MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
TOP_LEVEL_NAMES = frozenset(
    [
        "abstract introduction background methods materials and methods methods and materials results",
        "    discussion results and discussion conclusion conclusions conclusion and perspective",
        "    conclusions and perspectives summary summary and prospect concluding remarks perspectives",
        "    future perspectives outlook references acknowledgements acknowledgments funding",
        "    author contributions conflict of interest conflicts of interest supplementary material",
        "    data availability statement abbreviations",
    ]
)
_PROSE_LINE = 160  # a line this long is a paragraph of its own, whatever surrounds it


def _top_level_name(title: str) -> bool:
    t = re.sub(r"[^a-z ]", "", title.lower()).strip()
    return t in {n.strip() for n in TOP_LEVEL_NAMES} or t.split(" and ")[0] in {"conclusion", "conclusions"}


@dataclass
class _Raw:
    start: int
    end: int
    lines: list[str]
    kind: str = "body"  # body | heading | caption | listy | short | table
    level: int = 0
    number: str | None = None
    title: str = ""
    children_follow: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _raw_blocks(text: str) -> list[_Raw]:
    """Group lines into blocks: blank lines separate blocks, and a long prose line stands alone."""
    blocks: list[_Raw] = []
    cur: list[tuple[int, int]] = []

    def flush() -> None:
        if cur:
            lines = [text[s:e] for s, e in cur]
            blocks.append(_Raw(cur[0][0], cur[-1][1], lines))
            cur.clear()

    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        s = pos + (len(body) - len(body.lstrip()))
        e = pos + len(body.rstrip())
        pos += len(line)
        if e <= s:
            flush()
        elif e - s >= _PROSE_LINE:
            flush()
            cur.append((s, e))
            flush()
        else:
            cur.append((s, e))
    flush()
    return blocks


def _is_heading_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped or len(stripped) > 120 or len(stripped.split()) > 16 or "|" in stripped:
        return False
    if stripped[-1] in ".;:,)" and not NUMBERED.match(stripped):
        return False
    if stripped.endswith(("-", "–", ",", ";", "(", "and", "or")):
        return False
    return stripped[0].isupper() or stripped[0].isdigit()


def _classify(blocks: list[_Raw], markdown: bool) -> None:
    for b in blocks:
        first = b.lines[0]
        md = MD_HEADING.match(first) if markdown else None
        if md and len(b.lines) == 1:
            b.kind, b.level, b.title = "heading", len(md.group(1)), md.group(2).strip()
            num = NUMBERED.match(b.title)
            b.number = num.group(1) if num else None
        elif CAPTION.match(first):
            b.kind = "caption"
        elif markdown and all(ln.strip().startswith("|") for ln in b.lines):
            b.kind = "table"
        elif len(b.lines) == 1 and not markdown and _is_heading_line(first):
            b.kind, b.title = "heading", first.strip()
            num = NUMBERED.match(b.title)
            if num and all(int(p) < 40 for p in num.group(1).split(".")):
                b.number = num.group(1)
        elif len(b.lines) > 1 and max(len(ln) for ln in b.lines) < 100:
            b.kind = "listy"
        elif len(b.lines) == 1 and len(first) < 100 and not markdown:
            b.kind = "short"


def _mark_tables(blocks: list[_Raw]) -> None:
    """A run of short non-prose blocks with several multi-line ones is table text (e.g. an OCR'd table)."""
    i = 0
    while i < len(blocks):
        if blocks[i].kind not in ("heading", "listy", "short"):
            i += 1
            continue
        j = i
        while j < len(blocks) and blocks[j].kind in ("heading", "listy", "short"):
            j += 1
        run = blocks[i:j]
        listy = sum(b.kind == "listy" for b in run)
        lines = sum(len(b.lines) for b in run)
        if listy >= 2 and lines >= 6:
            for b in run:
                b.kind = "table"
        else:
            for b in run:
                if b.kind in ("listy", "short"):
                    b.kind = "body"
        i = j


def _assign_levels(blocks: list[_Raw]) -> None:
    headings = [b for b in blocks if b.kind == "heading"]
    numbered = any(h.number for h in headings)
    # Chains: a heading whose next block is also a heading is that heading's parent.
    for a, b in zip(blocks, blocks[1:], strict=False):
        if a.kind == "heading" and b.kind == "heading":
            a.children_follow = True
    current = 0
    i = 0
    while i < len(blocks):
        b = blocks[i]
        if b.kind != "heading" or b.level:  # markdown headings arrive with their level
            if b.kind == "heading":
                current = b.level
            i += 1
            continue
        chain = [b]
        while chain[-1].children_follow and i + len(chain) < len(blocks):
            chain.append(blocks[i + len(chain)])
        if numbered and b.number:
            for h in chain:
                h.level = len(h.number.split(".")) if h.number else (chain[0].level + 1)
        else:
            if _top_level_name(b.title) or current == 0:
                top = 1
            elif numbered:
                top = current + 1
            else:
                top = current - len(chain) + 1
                if top < 1:
                    top = current + 1
            for depth, h in enumerate(chain):
                h.level = h.level or (top + depth)
        current = chain[-1].level
        i += len(chain)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "section"


def analyze(text: str, *, markdown: bool = False) -> tuple[list[Block], list[Section]]:
    """Split ``text`` into typed blocks and a section tree whose offsets index into ``text``."""
    raws = _raw_blocks(text)
    _classify(raws, markdown)
    _mark_tables(raws)
    _assign_levels(raws)

    roots: list[Section] = []
    stack: list[Section] = []
    used: set[str] = set()
    table_captions: list[str] = []
    blocks: list[Block] = []
    in_table: Section | None = None

    def new_section(title: str, level: int, start: int, number: str | None, kind: str = "section") -> Section:
        base = _slug(f"{number} {title}" if number and not title.startswith(number) else title)
        sid, n = base, 2
        while sid in used:
            sid, n = f"{base}-{n}", n + 1
        used.add(sid)
        return Section(sid, title, level, start, start, number, kind)  # type: ignore[arg-type]

    def open_section(sec: Section) -> None:
        while stack and stack[-1].level >= sec.level:
            stack.pop()
        (stack[-1].children if stack else roots).append(sec)
        stack.append(sec)

    for raw in raws:
        if raw.kind == "heading":
            in_table = None
            kind = "abstract" if raw.title.lower() == "abstract" else "section"
            open_section(new_section(raw.title, raw.level, raw.start, raw.number, kind))
            sec = stack[-1]
            kind_b: BlockKind = "heading"
        elif raw.kind == "table" and (in_table or table_captions or not stack):
            # Table text far from its caption (a float) becomes a section named after the caption.
            if in_table is None:
                label = table_captions.pop(0) if table_captions else "Table"
                in_table = new_section(label, 1, raw.start, None, "table")
                roots.append(in_table)
            sec, kind_b = in_table, "table"
        elif raw.kind == "table":  # an inline table stays in its section
            sec, kind_b = stack[-1], "table"
        else:
            in_table = None
            if not stack:
                open_section(new_section("Abstract", 1, raw.start, None, "abstract"))
            sec = stack[-1]
            kind_b = "caption" if raw.kind == "caption" else "body"
            cap = CAPTION.match(raw.lines[0])
            if cap and cap.group(1) == "Table":
                table_captions.append(f"Table {cap.group(2)}")
        blocks.append(Block(kind_b, raw.start, raw.end, sec.id))

    _set_ends(roots, blocks)
    return blocks, roots


def _set_ends(roots: list[Section], blocks: list[Block]) -> None:
    last_end: dict[str, int] = {}
    for b in blocks:
        last_end[b.section_id] = max(last_end.get(b.section_id, 0), b.end)

    def walk(node: Section) -> int:
        end = max([last_end.get(node.id, node.start), *[walk(c) for c in node.children]])
        node.end = end
        return end

    for r in roots:
        walk(r)
