"""Extracting the facts of a corpus: what the documents teach the vocabulary, their studies (sentences, trial
reports, tables, OCR'd table text reconciled with the body) and the drugs they name, as plain records that
:mod:`qa.facts.db` files on disk."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from qa.chunking import Passage
from qa.documents import Document
from qa.facts.entities import segment_facts
from qa.facts.extract import (
    PassageFinder,
    Sentence,
    derive,
    document_drafts,
    document_sentences,
    evidence_for,
    merge_drafts,
)
from qa.facts.learn import LearnedFact, grow
from qa.facts.model import DrugRecord, FactRecords, Trial
from qa.facts.ocr import OcrNote, reconcile_tables
from qa.facts.report import Report, absorbs, is_trial_report, read_report, report_trial
from qa.facts.scan import Scans
from qa.facts.studies import clauses
from qa.facts.tables import table_trials
from qa.facts.vocab import Vocabulary, norm_key
from qa.shelf import DocumentShelf, rows_by_id


class _Sentences(Mapping[str, list[Sentence]]):
    """Each document's sentences with their mentions (``document_sentences``), made again when asked for and
    kept for the last few documents: holding every sentence of the corpus took ~50 MB at 10^5 passages.
    The vocabulary has finished learning, so the scans are current and each making is the same."""

    DOCUMENTS = 64

    def __init__(self, vocab: Vocabulary, documents: Sequence[Document], scans: Scans) -> None:
        self.vocab, self.scans = vocab, scans
        self.documents, self.rows = documents, rows_by_id(documents)  # (a build's shelf: read as asked)
        self._made: OrderedDict[str, list[Sentence]] = OrderedDict()

    def __getitem__(self, doc_id: str) -> list[Sentence]:
        made = self._made.get(doc_id)
        if made is None:
            doc = self.documents[self.rows[doc_id]]
            made = self._made[doc_id] = document_sentences(self.vocab, doc, self.scans)
            if len(self._made) > self.DOCUMENTS:
                self._made.popitem(last=False)
        else:
            self._made.move_to_end(doc_id)
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _carry_context(
    vocab: Vocabulary, trial: Trial, sentences: Mapping[str, list[Sentence]], finder: PassageFinder
) -> None:
    """A study stated without its disease takes it from the sentence before, when that names its drug."""
    if trial.conditions or (trial.designations and not (trial.name or trial.nct_ids)):
        return  # a designation states its own scope; the sentence before is about something else
    p = trial.primary
    doc_sentences = sentences.get(p.doc_id, [])
    idx = next((i for i, s in enumerate(doc_sentences) if s.start == p.start), None)
    if not idx or doc_sentences[idx - 1].block != doc_sentences[idx].block:
        return
    prev = doc_sentences[idx - 1]
    if not any(m.kind == "drug" and m.name in trial.interventions for m in prev.mentions):
        return
    facts = segment_facts(vocab, prev.doc.text, prev.mentions, prev.start, prev.end)
    if facts.conditions:
        trial.conditions = facts.conditions
        trial.evidence.append(evidence_for(prev, finder, "context"))


def _drug_records(
    vocab: Vocabulary,
    sentences: Mapping[str, list[Sentence]],
    trials: list[Trial],
    learned: list[LearnedFact],
    finder: PassageFinder,
) -> dict[str, DrugRecord]:
    mentions: Counter[str] = Counter()
    records: dict[str, DrugRecord] = {}

    def record(name: str) -> DrugRecord:
        if name not in records:
            info = vocab.drugs[name]
            records[name] = DrugRecord(
                name,
                list(info.aliases),
                vocab.drug_classes(name),
                vocab.drug_targets(name),
                source=info.source,
            )
        return records[name]

    for doc_sentences in sentences.values():
        previous: list[str] = []
        for s in doc_sentences:
            named = list(dict.fromkeys(m.name for m in s.mentions if m.kind == "drug"))
            for name in named:
                r = record(name)
                mentions[name] += 1
                if len(r.evidence) < 5:
                    r.evidence.append(evidence_for(s, finder))
            for a, b in clauses(s.doc.text, s.start, s.end):
                facts = segment_facts(vocab, s.doc.text, s.mentions, a, b)
                holders = facts.drugs or (
                    previous if len(previous) == 1 and s.doc.text[s.start : s.start + 3] == "It " else []
                )
                for name in holders:
                    r = record(name)
                    r.designations.extend(x for x in facts.designations if x not in r.designations)
            previous = named
    for t in trials:
        for name in t.interventions:
            if name in vocab.drugs:
                record(name).trials.append(t.id)
    for f in learned:
        if f.drug in vocab.drugs:
            record(f.drug).learned.append(f.to_dict())
    for name, r in records.items():
        r.mentions = mentions[name]
    return dict(sorted(records.items(), key=lambda kv: norm_key(kv[0])))


def _with_report(
    vocab: Vocabulary, report: Report, trials: list[Trial], finder: PassageFinder
) -> list[Trial]:
    """The report's own study as one record: the sentence-level records of it are folded in as evidence."""
    own = report_trial(vocab, report, finder)
    absorbed = [t for t in trials if absorbs(report, t)]
    spans = {(e.doc_id, e.start) for e in own.evidence}
    for t in absorbed:
        for e in t.evidence:
            if (e.doc_id, e.start) not in spans:
                spans.add((e.doc_id, e.start))
                own.evidence.append(replace(e, role="context"))
        if not own.interventions:
            own.interventions = t.interventions
            derive(vocab, own)
    return [own, *(t for t in trials if t not in absorbed)]


def extract_facts(
    documents: Sequence[Document], passages: Sequence[Passage], base: Vocabulary
) -> FactRecords:
    """Learn from the documents, extract their studies, reconcile table text, and index drugs."""
    vocab = base.copy()
    # each sentence split once, its mentions found again only when they may differ; a build's documents are on
    # a shelf (too many to hold), and so are their scans, beside it
    shelf = documents if isinstance(documents, DocumentShelf) else None
    scans = Scans(vocab, spill=shelf is not None, folder=shelf.folder if shelf else None)
    try:
        return _extract(vocab, scans, documents, passages)
    finally:
        scans.close()


def _extract(
    vocab: Vocabulary, scans: Scans, documents: Sequence[Document], passages: Sequence[Passage]
) -> FactRecords:
    learned = grow(vocab, documents, scans)
    finder = PassageFinder(passages)
    drafts = []
    for doc in documents:
        drafts.extend(document_drafts(vocab, doc, scans)[0])
    sentences = _Sentences(vocab, documents, scans)
    trials = merge_drafts(vocab, drafts, finder)
    for t in trials:
        _carry_context(vocab, t, sentences, finder)
    for doc in documents:
        if is_trial_report(doc, sentences[doc.id]):
            trials = _with_report(vocab, read_report(vocab, doc, sentences[doc.id]), trials, finder)
    trials += table_trials(vocab, documents, finder, trials)
    notes: list[OcrNote] = reconcile_tables(documents, trials, finder)
    order = rows_by_id(documents)  # (a shelf's without reading every document again)
    trials.sort(key=lambda t: (order.get(t.primary.doc_id, 0), t.primary.start))
    drugs = _drug_records(vocab, sentences, trials, learned, finder)
    return FactRecords(vocab, trials, drugs, [f.to_dict() for f in learned], [n.to_dict() for n in notes])
