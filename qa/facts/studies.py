"""Where a sentence names studies (NCT ids, acronyms, "a phase II trial ...") and which words belong to each."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.facts.phases import find_phases
from qa.facts.registry import find_registry_ids
from qa.facts.vocab import Mention, Vocabulary, norm_key

NCT_RE = re.compile(r"(?<![A-Za-z0-9])NCT\d{8}(?!\d)")
# Table text is OCR'd: N[CG]T, O for 0, l for 1 ("NGT03004183"). Only ever reconciled, never trusted alone.
NCT_LOOSE = re.compile(r"(?<![A-Za-z0-9])[NM][CGO]T\s?[0-9OIl]{8}(?![0-9])")
_STUDY = r"(?:clinical\s+)?(?:trial|study)"
_NAME = (
    r"[A-Z][A-Za-z0-9]*(?:[-\u2010\u2011][A-Za-z0-9]+)+"  # RELATIVITY-047, I-SPY2, MK-7684A-003, C-144-01
    r"|[A-Z]{2,}[a-z]+\s\d{1,4}"  # IMpower 150
    r"|[A-Z][a-z]*[A-Z][A-Za-z]*\d*"  # InnovaTIL, SKYSCRAPER
    r"|[A-Z]{4,}\d*"
)
NAME_BEFORE = re.compile(rf"(?<![\w-])(?P<name>{_NAME})(?:\s*\((?P<alt>[^()]{{1,40}})\))?\s+{_STUDY}\b")
NAME_AFTER = re.compile(rf"\b{_STUDY}\s+\(?(?P<name>{_NAME})\)?")
NAME_NCT = re.compile(rf"(?<![\w-])(?P<name>{_NAME})\s*\(\s*NCT\d{{8}}")
# Words that look like names but are not: roman numerals, agencies, abstract ids, generic acronyms.
_NOT_A_NAME = re.compile(
    r"^(?:[IVXl|]+[ab]?|Phase.*|NCT\d*|ESMO\d*|ASCO\d*|AACR\d*|LBA\d*|SITC\d*|FDA|EMA|CFDA|NMPA|TME|TIME|TIL|TILs|RNA|DNA|"
    r"RCT|PDX|CAR|ORR|DCR|PFS|OS|CR|PR|ICI|ICIs|AI|US|USA|UK|EU|China|The|This|These|An|A)$"
)
# Boundaries between list items at bracket depth zero.
_SEPARATOR = re.compile(r",|;|:|\s(?:and|or|while|whereas)\s|\binclud(?:e|es|ed|ing)\b")
STUDY_CUE = re.compile(r"\b(?:trial|study)\b", re.IGNORECASE)


@dataclass
class Anchor:
    kind: str  # nct | reg (another registry's id) | name
    value: str
    start: int
    end: int
    alt: str | None = None


@dataclass
class Group:
    """Anchors naming one study (or, for a bare list of NCT ids, one study per id)."""

    anchors: list[Anchor]
    seg_start: int = 0
    seg_end: int = 0

    @property
    def start(self) -> int:
        return self.anchors[0].start

    @property
    def end(self) -> int:
        return self.anchors[-1].end

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(a.value for a in self.anchors if a.kind == "name"))

    @property
    def ncts(self) -> list[str]:
        return list(dict.fromkeys(a.value for a in self.anchors if a.kind == "nct"))

    @property
    def regs(self) -> list[str]:
        """Ids in registries other than ClinicalTrials.gov (UMIN, ISRCTN, EudraCT ...)."""
        return list(dict.fromkeys(a.value for a in self.anchors if a.kind == "reg"))

    @property
    def alts(self) -> list[str]:
        return [a.alt for a in self.anchors if a.alt and not NCT_RE.search(a.alt) and _looks_like_id(a.alt)]


@dataclass
class Clause:
    start: int
    end: int
    groups: list[Group] = field(default_factory=list)
    shared: list[tuple[int, int]] = field(default_factory=list)  # text every study of the clause shares


def _looks_like_id(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Z][A-Z0-9]*-?\d[\w-]*", text.strip()))


def name_key(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper())


def _is_name(vocab: Vocabulary, name: str) -> bool:
    name = name.strip()
    return not _NOT_A_NAME.match(name) and not vocab.lookup(name) and len(norm_key(name)) >= 3


def find_anchors(vocab: Vocabulary, text: str, start: int, end: int) -> list[Anchor]:
    anchors = [Anchor("nct", m.group(0), m.start(), m.end()) for m in NCT_RE.finditer(text, start, end)]
    anchors += [
        Anchor("reg", r.value, r.start, r.end) for r in find_registry_ids(text, start, end) if not r.is_nct
    ]
    for rx in (NAME_BEFORE, NAME_AFTER, NAME_NCT):
        for m in rx.finditer(text, start, end):
            name = m.group("name")
            if not _is_name(vocab, name):
                continue
            alt = m.groupdict().get("alt")
            if not any(a.start <= m.start("name") < a.end for a in anchors):
                anchors.append(Anchor("name", name, m.start("name"), m.end("name"), alt))
    return sorted(anchors, key=lambda a: a.start)


def _depths(text: str, start: int, end: int) -> list[int]:
    depth, out = 0, []
    for ch in text[start:end]:
        if ch in "([":
            depth += 1
        out.append(depth)
        if ch in ")]":
            depth = max(0, depth - 1)
    return out


def separators(text: str, start: int, end: int, mentions: list[Mention]) -> list[tuple[int, int]]:
    """Top-level list separators in text[start:end]: not inside brackets, entity names, or "X and Y" of two entities."""
    depth = _depths(text, start, end)
    inside = [(m.start, m.end) for m in mentions] + [(a, b) for a, b, _ in find_phases(text, start, end)]
    ends = {m.end for m in mentions}
    starts = {m.start for m in mentions}
    out = []
    for m in _SEPARATOR.finditer(text, start, end):
        if depth[m.start() - start] != 0 or any(a <= m.start() < b for a, b in inside):
            continue
        if m.group(0).strip() in ("and", "or") and m.start() in ends and m.end() in starts:
            continue  # "cabiralizumab and nivolumab": one regimen, not two list items
        out.append((m.start(), m.end()))
    return out


_HEAD = re.compile(r"\b(?:trial|study)\s*\(?\s*$", re.IGNORECASE)


def _head(text: str, g: Group, floor: int) -> int:
    """Where a group's noun phrase starts: "a phase II clinical trial (NCT...)" starts at "trial"."""
    m = _HEAD.search(text, max(floor, g.start - 30), g.start)
    return m.start() if m else g.start


def clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A sentence cut at top-level semicolons: each clause usually speaks of its own studies."""
    if ";" not in text[start:end]:  # most sentences (the bracket depths of every character are not needed)
        return [(start, end)] if text[start:end].strip() else []
    depth = _depths(text, start, end)
    cuts = [start + i for i, ch in enumerate(text[start:end]) if ch == ";" and depth[i] == 0]
    bounds = [start, *[c + 1 for c in cuts], end + 1]
    return [
        (a, b - 1 if b - 1 <= end else end)
        for a, b in zip(bounds, bounds[1:], strict=False)
        if text[a : b - 1].strip()
    ]


def segment(vocab: Vocabulary, text: str, start: int, end: int, mentions: list[Mention]) -> Clause:
    """Group the clause's anchors and give each group the words between its neighbours' separators."""
    clause = Clause(start, end)
    anchors = find_anchors(vocab, text, start, end)
    if not anchors:
        return clause
    seps = separators(text, start, end, mentions)
    groups: list[Group] = [Group([anchors[0]])]
    for a in anchors[1:]:
        prev = groups[-1]
        if any(prev.end <= s < a.start for s, _ in seps):
            groups.append(Group([a]))
        else:
            prev.anchors.append(a)
    if len(groups) == 1:
        groups[0].seg_start, groups[0].seg_end = start, end
        clause.groups = groups
        return clause
    for i, g in enumerate(groups):
        floor = groups[i - 1].end if i else start
        head = _head(text, g, floor)
        before = [sep for sep in seps if floor <= sep[0] and sep[1] <= head]
        g.seg_start = before[-1][1] if before else (start if i == 0 else head)
        if i:
            groups[i - 1].seg_end = before[-1][0] if before else head
    groups[-1].seg_end = end
    clause.groups = groups
    clause.shared = [(start, groups[0].seg_start), (groups[-1].seg_end, end)]
    return clause
