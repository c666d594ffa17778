"""What one stretch of a sentence says about a study: interventions, targets, conditions, setting, phase ..."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.facts.biomarkers import find_biomarkers
from qa.facts.outcomes import Outcome, parse_outcomes
from qa.facts.phases import find_phases
from qa.facts.vocab import Mention, Vocabulary

_RESIST_AFTER = re.compile(
    r"\s?-?\s?(?P<w>resistant|refractory|naive|naïve|pretreated|experienced)\b", re.IGNORECASE
)
_RESIST_BEFORE = re.compile(
    r"(?:resistant|refractory|resistance|progressed|progression|failed|failure|prior|previous(?:ly)?|pretreated|worsens?)"
    r"(?:\s+(?:to|on|or|after|during|of|with|the|primary|prior|previous|subset|treated|treatment|an?|therapy))*\s*$",
    re.IGNORECASE,
)
_MARKER_AFTER = re.compile(
    r"^\s*(?:\([^()]*\)\s*)?(?:expression|≥|>|<|≤|=|TPS|tumou?r proportion|positive|negative|-positive|-negative|status|"
    r"score|levels?\b|high\b|low\b|\+|-?mutant|-?mutated|mutations?|wild-type|amplification|-?expressing|peptides)",
    re.IGNORECASE,
)
_MARKER_BEFORE = re.compile(
    r"(?:high|low|negative|positive|wild-type|mutant|mutated|overexpressed|expressing|expression of)\s+$",
    re.IGNORECASE,
)
_LINES = re.compile(
    r"\b(first|second|third|fourth)-?\s*(?:or|and|/)\s*(first|second|third|fourth)-line\b", re.IGNORECASE
)
_GENERIC_RESIST = re.compile(r"(?<![\w-])([A-Za-z][\w]*)-(resistant|refractory)\b")
_STAGE_IV = re.compile(
    r"\bstages?\s+(?:I{1,3}[A-C]?\s*(?:/|-|–|or|to|and)\s*)*IV\b"
)  # stage IV is metastatic


@dataclass
class Facts:
    """Entities found in one segment, in order of appearance."""

    drugs: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # classes named without a drug ("anti-TIM-3")
    targets: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    designations: list[str] = field(default_factory=list)
    biomarkers: list[str] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def merge(self, other: Facts) -> None:
        for name in (
            "drugs",
            "classes",
            "targets",
            "conditions",
            "settings",
            "statuses",
            "designations",
            "biomarkers",
            "phases",
        ):
            mine: list[str] = getattr(self, name)
            mine.extend(x for x in getattr(other, name) if x not in mine)
        self.outcomes.extend(other.outcomes)

    @property
    def interventions(self) -> list[str]:
        return [*self.drugs, *self.classes]


def _add(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def resistance_label(vocab: Vocabulary, m: Mention) -> str:
    """'anti-PD-L1-resistant' and 'refractory to PD-1' both become 'PD-1/PD-L1-resistant'."""
    targets = vocab.class_targets(m.name) if m.kind == "class" else [m.name] if m.kind == "target" else []
    axes = {vocab.targets[t].axis or t if t in vocab.targets else t for t in targets}
    base = "/".join(sorted(axes)) if axes else m.name
    return f"{base}-resistant"


def _context(text: str, m: Mention, lo: int, prev: tuple[Mention, str | None] | None) -> str | None:
    """'resist' when a mention names prior or failed therapy, 'marker' when a biomarker, else None."""
    if prev and prev[1] and re.fullmatch(r"\s*(?:/|,|or|and|\()\s*", text[prev[0].end : m.start]):
        return prev[1]
    if _RESIST_AFTER.match(text, m.end) or _RESIST_BEFORE.search(text[max(lo, m.start - 60) : m.start]):
        return "resist"
    if m.kind in ("target", "class") and (
        _MARKER_AFTER.match(text[m.end : m.end + 40])
        or _MARKER_BEFORE.search(text[max(lo, m.start - 30) : m.start])
    ):
        return "marker" if m.kind == "target" else None
    return None


def _descriptor(vocab: Vocabulary, text: str, m: Mention, mentions: list[Mention]) -> bool:
    """A class named right next to one of its drugs ("the TLR9 agonist SD-101", "PVX-410 vaccine")."""
    for d in mentions:
        if d.kind != "drug":
            continue
        if m.end <= d.start and re.fullmatch(r"\s*,?\s*(?:the\s+)?\(?\s*", text[m.end : d.start]):
            return True
        if d.end <= m.start and re.fullmatch(
            r"\s*(?:\([^()]*\))?\s*(?:,\s*(?:a|an|the)\s+(?:[\w-]+\s+){0,3})?", text[d.end : m.start]
        ):
            return True
        if abs(d.start - m.start) < 80 and m.name in {c for c in vocab.drug_classes(d.name)}:
            return True
    return False


def segment_facts(vocab: Vocabulary, text: str, mentions: list[Mention], start: int, end: int) -> Facts:
    facts = Facts()
    here = sorted((m for m in mentions if start <= m.start and m.end <= end), key=lambda m: m.start)
    prev: tuple[Mention, str | None] | None = None
    for m in here:
        ctx = _context(text, m, start, prev) if m.kind in ("drug", "class", "target") else None
        if m.kind in ("drug", "class", "target"):
            prev = (m, ctx)
        if ctx == "resist":
            if m.kind in ("class", "target"):
                _add(facts.settings, resistance_label(vocab, m))
            continue
        if ctx == "marker":
            continue
        if m.kind == "drug":
            _add(facts.drugs, m.name)
        elif m.kind == "class" and not _descriptor(vocab, text, m, here):
            _add(facts.classes, m.name)
        elif m.kind == "target":
            _add(facts.targets, m.name)
        elif m.kind == "condition":
            _add(facts.conditions, m.name)
        elif m.kind == "setting":
            _add(facts.settings, m.name)
        elif m.kind == "status":
            _add(facts.statuses, m.name)
        elif m.kind == "designation":
            agency = next((a.name for a in mentions if a.kind == "agency"), None)
            _add(facts.designations, f"{agency} {m.name}" if agency else m.name)
    for hit in _LINES.finditer(text, start, end):
        for word in hit.groups():
            _add(facts.settings, f"{word.lower()}-line")
    for hit in _GENERIC_RESIST.finditer(text, start, end):
        if not vocab.lookup(hit.group(1)) and hit.group(1).lower() not in (
            "anti",
            "treatment",
            "drug",
            "therapy",
        ):
            _add(facts.settings, f"{hit.group(1).lower()}-resistant")
    if _STAGE_IV.search(text, start, end):
        _add(facts.settings, "metastatic")
    for _s, _e, phase in find_phases(text, start, end):
        _add(facts.phases, phase)
    facts.biomarkers = find_biomarkers(text, mentions, start, end)
    facts.outcomes = parse_outcomes(text, mentions, start, end)
    return facts
