"""Split document text at offsets so pages can mark sentences and anchor passages without touching HTML."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from qa.api.models import DocumentOut, PassageOut, SectionOut
from qa.chunking import Passage

Span = tuple[int, int]


@dataclass
class Segment:
    text: str
    start: int  # offsets into the document text
    end: int
    marked: bool = False  # inside a highlighted sentence
    in_passage: bool = False  # inside the passage the link asked for
    anchors: list[Passage] = field(default_factory=list)  # passages that start here


@dataclass
class Block:
    kind: str  # "heading" or "text"
    level: int
    segments: list[Segment]
    section: SectionOut | None = None
    synthetic_title: str | None = None  # a heading the text does not contain (e.g. "Abstract")


def _inside(pos: int, spans: Sequence[Span]) -> bool:
    return any(a <= pos < b for a, b in spans)


def split(
    text: str, base: int, start: int, end: int, marks: Sequence[Span] = (), cuts: Iterable[int] = ()
) -> list[Segment]:
    """Segments of ``text[start-base:end-base]`` cut wherever a mark begins or ends, or at ``cuts``."""
    points = {start, end}
    points.update(x for a, b in marks for x in (a, b) if start < x < end)
    points.update(x for x in cuts if start < x < end)
    ordered = sorted(points)
    return [
        Segment(text[a - base : b - base], a, b, marked=_inside(a, marks))
        for a, b in zip(ordered, ordered[1:], strict=False)
        if b > a
    ]


def passage_segments(p: PassageOut) -> list[Segment]:
    """A passage card's text, its answer sentences marked."""
    marks = [(h.start, h.end) for h in p.highlights]
    return split(p.text, p.start, p.start, p.end, marks)


def _flat(sections: list[SectionOut]) -> list[SectionOut]:
    out: list[SectionOut] = []
    for s in sections:
        out.append(s)
        out.extend(_flat(s.children))
    return out


def _trimmed(text: str, a: int, b: int) -> Span:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def document_blocks(
    doc: DocumentOut, passages: list[Passage], hl: Span | None = None, focus: Passage | None = None
) -> list[Block]:
    """Headings and text blocks in reading order; each passage gets an anchor where it starts."""
    text = doc.text
    marks = [hl] if hl else []
    focus_span = [(focus.start, focus.end)] if focus else []
    anchored = sorted(
        [*passages, *([focus] if focus and focus not in passages else [])], key=lambda p: p.start
    )
    cuts = [x for p in anchored for x in (p.start, p.end)] + [x for s in focus_span for x in s]
    flat = _flat(doc.sections)
    regions: list[tuple[SectionOut | None, int, int]] = []
    first = flat[0].start if flat else len(text)
    if text[:first].strip():
        regions.append((None, 0, first))
    for i, s in enumerate(flat):
        regions.append((s, s.start, flat[i + 1].start if i + 1 < len(flat) else len(text)))

    blocks: list[Block] = []
    for section, a, b in regions:
        if section is not None:
            # the heading line as written ("2.1 Methods", "## Methods"): shown from the text, its markup dropped
            line_end = text.find("\n", a, b)
            line_end = b if line_end < 0 else line_end
            heading_like = section.title and line_end - a <= len(section.title) + 12
            at = text.find(section.title, a, line_end) if heading_like else -1
            if at >= 0:
                blocks.append(
                    Block("heading", section.level, split(text, 0, at, at + len(section.title)), section)
                )
                a = line_end
            else:
                blocks.append(Block("heading", section.level, [], section, synthetic_title=section.title))
        a, b = _trimmed(text, a, b)
        if b > a:
            blocks.append(Block("text", 0, split(text, 0, a, b, marks, cuts), section))

    pending = list(anchored)
    for block in blocks:
        for seg in block.segments:
            seg.in_passage = _inside(seg.start, focus_span)
            while pending and pending[0].start <= seg.start:
                seg.anchors.append(pending.pop(0))
    if pending and blocks and blocks[-1].segments:
        blocks[-1].segments[-1].anchors.extend(pending)
    return blocks
