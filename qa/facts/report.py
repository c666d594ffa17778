"""A paper that reports one trial becomes that trial's record, formed from its title, abstract and methods.

A trial report says so in its title or abstract ("A randomized, controlled trial evaluating ...", "This was a
phase II, double-blind, placebo-controlled, randomized ... study"). Its own registry ids are the ones it states
as its registration, in its abstract or in its methods (not the other trials its discussion names); its arms
come from the randomization sentence; its outcomes from the results it reports (sentences that cite no other
paper), each with the sentence it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.documents import Document, Section, reference_numbers
from qa.facts.entities import segment_facts
from qa.facts.extract import PassageFinder, Sentence, derive, evidence_for
from qa.facts.learn import CODE_NAME
from qa.facts.model import Trial
from qa.facts.outcomes import Outcome
from qa.facts.phases import find_phases
from qa.facts.registry import REGISTRATION_CUE, find_registry_ids
from qa.facts.vocab import Vocabulary

_DESIGN = (
    r"(?:randomi[sz]ed|controlled|placebo-controlled|double-blind|open-label|single-arm|pilot|phase\s+\S+)"
)
_DESIGN_STUDY = re.compile(
    rf"\b{_DESIGN}(?:[\s,-]+[\w/-]+){{0,8}}?\s+(?:clinical\s+)?(?:trial|study)\b", re.I
)
# the paper speaking of its own study
_SELF = re.compile(
    r"\b(?:this|our|the\s+present|the\s+current)\s+(?:[\w/,-]+\s+){0,8}?(?:trial|study)\b|\bwe\s+(?:report|conducted|"
    r"designed|performed|present)\b|\b(?:study|trial)\s+was\s+(?:conducted|designed|performed)\b|\bThis\s+was\s+an?\b",
    re.I,
)
# a sentence crediting other authors' work ("Slingluff and colleagues reported ...", "Smith et al. showed")
_OTHERS_CREDITED = re.compile(
    r"\b[A-Z][\w'’-]+(?:\s+et\s+al\b|\s+and\s+(?:colleagues|co-?workers|associates|coauthors)\b|'s\s+group\b)"
)
_REVIEW = re.compile(
    r"\b(?:this|the\s+present|our)\s+(?:\w+\s+)?review\b|\bwe\s+(?:review|summari[sz]e|discuss)\b|"
    r"\b(?:systematic|narrative|comprehensive|literature)\s+review\b|\bmeta-analysis\b",
    re.I,
)
_OWN_SECTIONS = re.compile(
    r"method|design|patient|registration|conduct|treatment|procedure|result|survival|respon|"
    r"efficacy|safety|outcome|endpoint",
    re.I,
)
# "randomized to the BTH1677 arm (...) or Control arm (...)", "randomly assigned to receive either X or Y"
_RANDOMIZED = re.compile(
    r"\brandom(?:ly|i[sz]ed)\s+(?:assigned\s+|allocated\s+)?(?:\(?\d+\s*:\s*\d+\)?\s+)?(?:in)?to\s+"
    r"(?:receive\s+)?(?:treatment\s+with\s+)?(?:either\s+)?(?P<arms>.+)",
    re.I,
)
_ARMS_END = re.compile(
    r",\s+(?:given|administered|every|each|until|followed)\b|\s+in\s+a\s+\d+\s*:\s*\d+\b|\s+and\s+(?:applied|received|"
    r"were|was|then)\b|\.\s*$|;",
    re.I,
)
_ARM_SPLIT = re.compile(r",\s*(?:or\s+|and\s+)?|\s+(?:or|versus|vs\.?)\s+")
# a disease named by its head noun, for conditions the vocabulary does not list ("actinic keratosis")
_DISEASE = re.compile(
    r"\b(?:(?!(?:in|of|with|and|the|for|following|after|treated|patients)\b)[a-z][a-z-]+\s+){0,2}(?:keratos[ie]s|carcinomas?|adenocarcinomas?|cancers?|melanomas?|lymphomas?|"
    r"leuka?emias?|sarcomas?|gliomas?|glioblastomas?|myelomas?|neoplasias?|dysplasias?|mesotheliomas?)\b"
)
_BRACKET_CODE = re.compile(r"\((?P<code>[A-Z][A-Za-z]*\d[A-Za-z0-9]*(?:-[A-Za-z0-9]+)+)\)")
_LEADING = re.compile(r"^(?:the|a|an|either|receive)\s+", re.I)


@dataclass
class Report:
    """What a trial report says about its own study, with the sentences that say it."""

    doc: Document
    design: list[Sentence] = field(default_factory=list)
    registration: list[Sentence] = field(default_factory=list)
    arms_sentence: Sentence | None = None
    arms: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    outcomes: list[tuple[Outcome, Sentence]] = field(default_factory=list)


def _top_sections(doc: Document) -> dict[str, Section]:
    """Each section id -> its top-level section (the abstract, a body section ...)."""
    out: dict[str, Section] = {}

    def walk(node: Section, top: Section) -> None:
        out[node.id] = top
        for child in node.children:
            walk(child, top)

    for s in doc.sections:
        walk(s, s)
    return out


def _own_section(path: str) -> bool:
    """Methods and results speak of the paper's own study ("Results and Discussion" too); background and
    discussion speak of other studies as well."""
    return bool(_OWN_SECTIONS.search(path))


def _path(doc: Document, s: Sentence) -> str:
    return " / ".join(doc.section_path(doc.blocks[s.block].section_id))


def _in_abstract(doc: Document, tops: dict[str, Section], s: Sentence) -> bool:
    top = tops.get(doc.blocks[s.block].section_id)
    return top is not None and top.kind == "abstract"


def is_trial_report(doc: Document, sentences: list[Sentence]) -> bool:
    """The title or the abstract describes the paper's own trial, and the paper is not a review."""
    title = doc.meta.title or ""
    tops = _top_sections(doc)
    abstract = [s for s in sentences if _in_abstract(doc, tops, s)]
    abstract_text = " ".join(doc.text[s.start : s.end] for s in abstract)
    if re.search(r"\breview\b", title, re.I) or _REVIEW.search(abstract_text):
        return False
    if _DESIGN_STUDY.search(title):
        return True
    return any(
        _DESIGN_STUDY.search(doc.text, s.start, s.end) and _SELF.search(doc.text, s.start, s.end)
        for s in abstract
    )


def _drop_long_brackets(text: str, longest: int = 40) -> str:
    """``text`` without its bracketed stretches longer than ``longest`` characters (nested brackets included)."""
    out: list[str] = []
    depth, opened, kept = 0, 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            if depth == 0:
                opened, kept = i, len(out)
            depth += 1
        out.append(ch)
        if ch in ")]" and depth:
            depth -= 1
            if depth == 0 and i - opened > longest:
                del out[kept:]
    return re.sub(r"\s+([,;.])", r"\1", "".join(out))


def _arms(text: str) -> list[str]:
    m = _RANDOMIZED.search(text)
    if not m:
        return []
    body = _drop_long_brackets(
        m.group("arms")
    )  # "(N = 61; IV BTH1677, 4 mg/kg, ...)": the arm's name suffices
    cut = _ARMS_END.search(body)
    body = body[: cut.start()] if cut else body
    arms = [_LEADING.sub("", a.strip(" ,.")) for a in _ARM_SPLIT.split(body)]
    arms = [a for a in arms if a and len(a) <= 80]
    if len(arms) >= 2 and all(a.endswith(")") for a in arms[:-1]) and ")" in arms[-1]:
        arms[-1] = arms[-1][
            : arms[-1].rindex(")") + 1
        ]  # "... or 1000 μg (arm C) of CEA peptide ...": shared tail
    return arms if len(arms) >= 2 else []


def read_report(vocab: Vocabulary, doc: Document, sentences: list[Sentence]) -> Report:
    tops = _top_sections(doc)
    report = Report(doc)
    for s in sentences:
        text = doc.text[s.start : s.end]
        abstract = _in_abstract(doc, tops, s)
        path = _path(doc, s)
        own_place = abstract or _own_section(path)
        cites = bool(reference_numbers(text))
        if _DESIGN_STUDY.search(text) and _SELF.search(text) and not cites:
            report.design.append(s)
        ids = find_registry_ids(text)
        if (
            ids
            and (REGISTRATION_CUE.search(text) or REGISTRATION_CUE.search(path) or own_place)
            and not cites
        ):
            report.registration.append(s)
            report.ids.extend(r.value for r in ids if r.value not in report.ids)
        if not report.arms and own_place and (arms := _arms(text)):
            report.arms, report.arms_sentence = arms, s
        if own_place and not cites:
            facts = segment_facts(vocab, doc.text, s.mentions, s.start, s.end)
            report.outcomes.extend((o, s) for o in facts.outcomes)
    return report


def _title_facts(vocab: Vocabulary, doc: Document) -> tuple[list[str], list[str], list[str]]:
    """(drugs and classes, conditions, phases) the title names; code names the vocabulary lacks included."""
    title = doc.meta.title or ""
    mentions = vocab.find(title)
    facts = segment_facts(vocab, title, mentions, 0, len(title))
    known = {m.text.lower() for m in mentions}
    codes = [c.group(0) for c in CODE_NAME.finditer(title)] + [
        c.group("code") for c in _BRACKET_CODE.finditer(title)
    ]
    new = [c for c in dict.fromkeys(codes) if c.lower() not in known and not find_registry_ids(c)]
    return [*new, *facts.interventions], facts.conditions, [p for _a, _b, p in find_phases(title)]


def report_trial(vocab: Vocabulary, report: Report, finder: PassageFinder) -> Trial:
    doc = report.doc
    interventions, conditions, phases = _title_facts(vocab, doc)
    stated = [*report.design, *([report.arms_sentence] if report.arms_sentence else [])]
    for s in stated:
        facts = segment_facts(vocab, doc.text, s.mentions, s.start, s.end)
        phases += [p for p in facts.phases if p not in phases]
        conditions += [c for c in facts.conditions if c not in conditions]
        if not interventions or s is report.arms_sentence:  # the arms name what each group received
            interventions += [x for x in facts.interventions if x not in interventions]
    if not conditions:
        title = doc.meta.title or ""
        found = _DISEASE.search(title) or next(
            (m for s in report.design if (m := _DISEASE.search(doc.text, s.start, s.end))), None
        )
        conditions = [found.group(0)] if found else []
    ncts = [i for i in report.ids if i.startswith("NCT")]
    others = [i for i in report.ids if not i.startswith("NCT")]
    ids = ncts or others
    trial = Trial(id=ids[0] if ids else f"{doc.id}:study", nct_ids=ncts, registry_ids=others)
    trial.phase = phases[0] if phases else None
    trial.interventions = list(dict.fromkeys(interventions))
    trial.conditions = [
        c
        for c in dict.fromkeys(conditions)
        if not any(c in vocab.condition_ancestors(o) - {o} for o in conditions)
    ]
    trial.arms = report.arms
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    for o, s in report.outcomes:
        key = (o.measure, o.value, tuple(o.versus))
        if key not in seen:
            seen.add(key)
            o.quote = doc.text[s.start : s.end]
            trial.outcomes.append(o)
    derive(vocab, trial)
    spans: set[int] = set()
    evidence = [*report.design[:1], *report.registration, *stated[1:], *(s for _o, s in report.outcomes)]
    for s in evidence:
        if s.start not in spans:
            spans.add(s.start)
            trial.evidence.append(evidence_for(s, finder, "mention" if not trial.evidence else "context"))
    return trial


def absorbs(report: Report, trial: Trial) -> bool:
    """A record the sentence-level extraction made of the report's own study: one of its ids, or an unnamed study
    stated where the paper speaks of itself (its abstract or methods and results, citing no other paper)."""
    if set(trial.nct_ids + trial.registry_ids) & set(report.ids):
        return True
    if trial.name or trial.nct_ids or trial.registry_ids:
        return False
    doc, p = report.doc, trial.primary
    if p.doc_id != doc.id:
        return False
    # "After this trial was initiated, Slingluff and colleagues reported ... (34)": their study, not this one
    if (p.refs or reference_numbers(p.quote)) and _OTHERS_CREDITED.search(p.quote):
        return False
    if _SELF.search(p.quote):
        return True  # "We conducted a phase III randomized controlled study ... (8)": its methods' citations
    if p.refs:
        return False
    tops = _top_sections(doc)
    block = next((b for b in doc.blocks if b.start <= p.start < b.end), None)
    if block is None:
        return False
    top = tops.get(block.section_id)
    path = " / ".join(doc.section_path(block.section_id))
    return (top is not None and top.kind == "abstract") or _own_section(path)
