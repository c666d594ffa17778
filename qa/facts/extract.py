"""Trials and studies from documents: one record per study, however many places mention it, with evidence."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from qa.chunking import Passage
from qa.documents import Document, reference_numbers
from qa.facts.entities import Facts, segment_facts
from qa.facts.model import Evidence, Trial
from qa.facts.scan import Scans
from qa.facts.studies import STUDY_CUE, Clause, clauses, segment
from qa.facts.vocab import Mention, Vocabulary
from qa.passage_table import document_rows
from qa.text_rules import slug

_NOT_CLINICAL = re.compile(
    r"(?:preclinical|mouse|mice|animal|murine|follow-up|in vitro)\s+(?:[\w-]+\s+)?$", re.IGNORECASE
)
_PATIENTS = re.compile(r"\bpatients?\b|\bphase\b|\btrial\b", re.IGNORECASE)


@dataclass(slots=True)  # one per sentence of the corpus: no __dict__ each
class Sentence:
    doc: Document
    start: int
    end: int
    kind: str
    block: int
    mentions: list[Mention] = field(default_factory=list)

    def quote(self) -> Quote:
        return Quote(self.doc.id, self.start, self.end, self.kind, self.doc.text[self.start : self.end])


@dataclass(frozen=True, slots=True)
class Quote:
    """Where a sentence is and what it says: all that merging drafts reads of it. A draft keeps this, not its
    sentence, whose document would stay in memory with it (most of a corpus, held until every draft is in)."""

    doc_id: str
    start: int
    end: int
    kind: str
    text: str


@dataclass
class Draft:
    """One study as one clause states it."""

    quote: Quote  # the sentence that states it
    names: list[str]
    ncts: list[str]
    alts: list[str]
    facts: Facts
    direct_phase: bool
    role: str = "mention"
    regs: list[str] = field(default_factory=list)  # ids in other registries (UMIN, ISRCTN ...)


class PassageFinder:
    """The passage that holds a sentence (for evidence ids); table lines and captions included.

    A document's passages are looked at when one of its sentences is first asked about, and kept for the
    next few documents (``DOCUMENTS``): finding a build's facts asks document by document, and holding
    every passage's sentences at once made a dict of 2.3 million spans at 10^6 passages."""

    DOCUMENTS = 64

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = passages
        self._rows = document_rows(passages)
        self._docs: OrderedDict[str, tuple[dict[tuple[int, int], str], list[tuple[int, int, str]]]] = (
            OrderedDict()
        )

    def _of(self, doc_id: str) -> tuple[dict[tuple[int, int], str], list[tuple[int, int, str]]]:
        found = self._docs.get(doc_id)
        if found is None:
            exact: dict[tuple[int, int], str] = {}
            spans: list[tuple[int, int, str]] = []
            for row in self._rows(doc_id):
                p = self.passages[row]
                spans.append((p.start, p.end, p.id))
                for span in p.sentences:
                    exact.setdefault(span, p.id)
            found = self._docs[doc_id] = (exact, spans)
            if len(self._docs) > self.DOCUMENTS:
                self._docs.popitem(last=False)
        else:
            self._docs.move_to_end(doc_id)
        return found

    def find(self, doc_id: str, start: int, end: int) -> str:
        exact, spans = self._of(doc_id)
        hit = exact.get((start, end))
        if hit:
            return hit
        for p_start, p_end, p_id in spans:
            if p_start <= start and end <= p_end:
                return p_id
        near = [p_id for p_start, p_end, p_id in spans if p_start <= start < p_end]
        return near[0] if near else f"{doc_id}:{start}-{end}"


def document_sentences(vocab: Vocabulary, doc: Document, scans: Scans | None = None) -> list[Sentence]:
    """``doc``'s body and caption sentences with their mentions (from ``scans`` where still current)."""
    scans = scans or Scans(vocab)
    return [
        Sentence(doc, s.start, s.end, s.kind, s.block, scans.mentions(doc, s)) for s in scans.sentences(doc)
    ]


def _facts(vocab: Vocabulary, s: Sentence, start: int, end: int) -> Facts:
    return segment_facts(vocab, s.doc.text, s.mentions, start, end)


def _unnamed(vocab: Vocabulary, s: Sentence, start: int, end: int) -> Draft | None:
    """'A trial that evaluated SD-101 combined with pembrolizumab in advanced melanoma ...'."""
    text = s.doc.text
    cue = next(
        (
            c
            for c in STUDY_CUE.finditer(text, start, end)
            if not _NOT_CLINICAL.search(text[max(start, c.start() - 40) : c.start()])
        ),
        None,
    )
    if cue is None or not _PATIENTS.search(text, start, end):
        return _designated(vocab, s, start, end)
    facts = _facts(vocab, s, start, end)
    if not facts.interventions:
        return None
    return Draft(s.quote(), [], [], [], facts, bool(facts.phases))


def _designated(vocab: Vocabulary, s: Sentence, start: int, end: int) -> Draft | None:
    """'FDA has awarded the Fast Track designation for CMP-001 combined with nivolumab plus ipilimumab': a
    regulatory designation of a drug or regimen is a record of its own (approvals are not designations)."""
    if not any(m.kind == "designation" and start <= m.start < end for m in s.mentions):
        return None
    facts = _facts(vocab, s, start, end)
    if not facts.drugs or not [d for d in facts.designations if not d.endswith("Approval")]:
        return None
    return Draft(s.quote(), [], [], [], facts, bool(facts.phases))


_PLURAL_VERB = re.compile(r"\b(?:are|were|have\s+been|remain)\b", re.IGNORECASE)


def _shared_status(vocab: Vocabulary, s: Sentence, clause: Clause, drafts: list[Draft]) -> None:
    """'A study on X (NCT...) and the InnovaTIL-01 study on Y are currently ongoing': the status after the last
    study, stated with a plural verb, holds for every study of the clause."""
    if len(clause.groups) < 2:
        return
    tail = (clause.groups[-1].end, clause.end)
    if not _PLURAL_VERB.search(s.doc.text, *tail):
        return
    statuses = _facts(vocab, s, *tail).statuses
    for d in drafts:
        d.facts.statuses.extend(x for x in statuses if x not in d.facts.statuses)


def clause_drafts(vocab: Vocabulary, s: Sentence, start: int, end: int) -> list[Draft]:
    text = s.doc.text
    clause: Clause = segment(vocab, text, start, end, s.mentions)
    if not clause.groups:
        draft = _unnamed(vocab, s, start, end)
        return [draft] if draft else []
    shared = Facts()
    for a, b in clause.shared:
        if b > a:
            shared.merge(_facts(vocab, s, a, b))
    drafts = []
    for g in clause.groups:
        own = _facts(vocab, s, g.seg_start, g.seg_end)
        direct = bool(own.phases)
        facts = Facts()
        facts.merge(own)
        if not own.phases:
            facts.phases = list(shared.phases)
        for name in ("conditions", "settings", "statuses", "targets", "designations", "biomarkers"):
            mine: list[str] = getattr(facts, name)
            mine.extend(x for x in getattr(shared, name) if x not in mine)
        if not own.interventions:
            facts.drugs, facts.classes = list(shared.drugs), list(shared.classes)
        if g.names or (g.regs and len(g.ncts) <= 1):
            drafts.append(Draft(s.quote(), g.names, g.ncts, g.alts, facts, direct, regs=g.regs))
        else:  # a bare list of registry ids: one study each, sharing what the clause says
            drafts.extend(Draft(s.quote(), [], [n], [], facts, direct) for n in g.ncts)
            drafts.extend(Draft(s.quote(), [], [], [], facts, direct, regs=[r]) for r in g.regs)
    _shared_status(vocab, s, clause, drafts)
    return drafts


def _continuation(vocab: Vocabulary, s: Sentence) -> Facts | None:
    """An anchorless sentence that reports outcomes continues the study of the sentence before it."""
    facts = _facts(vocab, s, s.start, s.end)
    return facts if facts.outcomes else None


_REFERENCE = re.compile(
    r"\b(?:this|that|the same)\s+(?:drug|agent|regimen|combination|therapy|compound|treatment)\b",
    re.IGNORECASE,
)


def _antecedent(vocab: Vocabulary, sentences: list[Sentence], i: int, before: int) -> list[str]:
    """What "this drug" / "this regimen" refers to: the interventions named just before."""
    s = sentences[i]
    if before > s.start:
        here = _facts(vocab, s, s.start, before)
        if here.interventions:
            return here.interventions
    if i and sentences[i - 1].block == s.block:
        prev = sentences[i - 1]
        return _facts(vocab, prev, prev.start, prev.end).interventions
    return []


def _sentence_drafts(vocab: Vocabulary, sentences: list[Sentence], i: int) -> list[Draft]:
    s = sentences[i]
    out: list[Draft] = []
    last: list[Draft] = []
    for a, b in clauses(s.doc.text, s.start, s.end):
        mine = clause_drafts(vocab, s, a, b)
        for d in mine:
            if not d.facts.interventions and _REFERENCE.search(s.doc.text, a, b):
                d.facts.drugs = [x for x in _antecedent(vocab, sentences, i, a) if x in vocab.drugs]
                d.facts.classes = [x for x in _antecedent(vocab, sentences, i, a) if x not in vocab.drugs]
        if not mine and len(last) == 1:
            # "...; it represents the first phase III study": a clause continuing the one study before it
            more = _facts(vocab, s, a, b)
            target = last[0].facts
            for name in ("phases", "statuses", "conditions", "settings"):
                mine_list: list[str] = getattr(target, name)
                mine_list.extend(x for x in getattr(more, name) if x not in mine_list)
            target.outcomes.extend(more.outcomes)
            last[0].direct_phase = last[0].direct_phase or bool(more.phases)
            continue
        out.extend(mine)
        last = mine
    return out


def document_drafts(
    vocab: Vocabulary, doc: Document, scans: Scans | None = None
) -> tuple[list[Draft], list[Sentence]]:
    sentences = document_sentences(vocab, doc, scans)
    drafts: list[Draft] = []
    last: tuple[int, list[Draft]] | None = None  # (sentence index, drafts it produced)
    for i, s in enumerate(sentences):
        mine = _sentence_drafts(vocab, sentences, i)
        if not mine and last and last[0] == i - 1 and len(last[1]) == 1 and sentences[i - 1].block == s.block:
            facts = _continuation(vocab, s)
            if facts:
                prev = last[1][0]
                facts.phases, facts.drugs, facts.classes = [], [], []
                drafts.append(Draft(s.quote(), prev.names, prev.ncts, [], facts, False, role="continuation"))
                last = (i, [prev])
                continue
        drafts.extend(mine)
        last = (i, mine) if mine else last
    return drafts, sentences


def evidence_for(
    s: Sentence | Quote, finder: PassageFinder, role: str = "mention", note: str | None = None
) -> Evidence:
    q = s.quote() if isinstance(s, Sentence) else s
    return Evidence(
        finder.find(q.doc_id, q.start, q.end),
        q.doc_id,
        q.text,
        q.start,
        q.end,
        reference_numbers(q.text),
        q.kind,
        role,
        note,
    )


def merge_drafts(vocab: Vocabulary, drafts: list[Draft], finder: PassageFinder) -> list[Trial]:
    """Union drafts that share an NCT id or a name; unnamed studies stay one record each."""
    parent = list(range(len(drafts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, d in enumerate(drafts):
        keys = [f"nct:{n}" for n in d.ncts] + [f"reg:{r}" for r in d.regs]
        keys += [f"name:{slug(n)}" for n in [*d.names, *d.alts]]
        if not keys:
            keys = [f"doc:{d.quote.doc_id}:{d.quote.start}"]
        for k in keys:
            if k in owner:
                parent[root(i)] = root(owner[k])
            else:
                owner[k] = i
    groups: dict[int, list[Draft]] = {}
    for i, d in enumerate(drafts):
        groups.setdefault(root(i), []).append(d)
    return [_trial(vocab, members, finder) for members in groups.values()]


def _trial(vocab: Vocabulary, members: list[Draft], finder: PassageFinder) -> Trial:
    members.sort(key=lambda d: (d.role != "mention", not d.names, d.quote.doc_id, d.quote.start))
    names = list(dict.fromkeys(n for d in members for n in d.names))
    ncts = list(dict.fromkeys(n for d in members for n in d.ncts))
    alts = list(dict.fromkeys(a for d in members for a in d.alts if a not in names))
    first = members[0].quote
    regs = list(dict.fromkeys(r for d in members for r in d.regs))
    ids = ncts or regs
    trial = Trial(id=ids[0] if ids else slug(names[0]) if names else f"{first.doc_id}:{first.start}")
    trial.name, trial.nct_ids, trial.aliases = (names[0] if names else None), ncts, names[1:] + alts
    trial.registry_ids = regs
    merged = Facts()
    for d in members:
        for o in d.facts.outcomes:
            o.quote = o.quote or d.quote.text
        merged.merge(d.facts)
    direct = [p for d in members if d.direct_phase for p in d.facts.phases]
    phases = direct or merged.phases
    trial.phase = phases[0] if phases else None
    trial.interventions = merged.interventions
    trial.conditions = [
        c
        for c in merged.conditions
        if not any(c in vocab.condition_ancestors(o) - {o} for o in merged.conditions)
    ]
    trial.setting = merged.settings
    trial.status = merged.statuses[0] if merged.statuses else None
    trial.designations = merged.designations
    trial.biomarkers = merged.biomarkers
    seen: set[tuple[str, str]] = set()
    for o in merged.outcomes:
        if (o.measure, o.value) not in seen:
            seen.add((o.measure, o.value))
            trial.outcomes.append(o)
    derive(vocab, trial, merged.targets)
    spans: set[tuple[str, int]] = set()
    for d in members:
        key = (d.quote.doc_id, d.quote.start)
        if key not in spans:
            spans.add(key)
            trial.evidence.append(evidence_for(d.quote, finder, d.role))
    return trial


def derive(vocab: Vocabulary, trial: Trial, direct_targets: list[str] | None = None) -> None:
    """Classes and targets follow from the interventions (and targets the text names itself)."""
    classes: dict[str, None] = {}
    targets: dict[str, None] = dict.fromkeys(direct_targets or trial.targets)
    for name in trial.interventions:
        if name in vocab.drugs:
            classes.update(dict.fromkeys(vocab.drug_classes(name)))
            targets.update(dict.fromkeys(vocab.drug_targets(name)))
        else:
            for c in sorted(vocab.class_ancestors(name), key=lambda c: c != name):
                classes.setdefault(c, None)
                targets.update(dict.fromkeys(vocab.class_targets(c)))
    trial.drug_classes, trial.targets = list(classes), list(targets)
