"""The fact store: built at index time into the build folder (facts.json), loaded next to the index."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from qa.chunking import Passage
from qa.corpus import Corpus
from qa.documents import Document
from qa.errors import NotFound
from qa.facts.entities import segment_facts
from qa.facts.extract import PassageFinder, Sentence, derive, document_drafts, evidence_for, merge_drafts
from qa.facts.learn import LearnedFact, grow
from qa.facts.model import DrugRecord, Trial
from qa.facts.ocr import OcrNote, reconcile_tables
from qa.facts.query import (
    TrialCatalog,
    TrialQuery,
    answer_trials,
    expand_query,
    filter_trials,
    nearest_trials,
)
from qa.facts.report import Report, absorbs, is_trial_report, read_report, report_trial
from qa.facts.scan import Scans
from qa.facts.studies import clauses, name_key
from qa.facts.tables import table_trials
from qa.facts.vocab import Vocabulary, norm_key

log = logging.getLogger(__name__)

FACTS_FILE = "facts.json"
VERSION = 1


class FactStore:
    def __init__(
        self,
        vocab: Vocabulary,
        trials: list[Trial],
        drugs: dict[str, DrugRecord],
        learned: list[dict[str, Any]] | None = None,
        ocr: list[dict[str, Any]] | None = None,
    ) -> None:
        self.vocab = vocab
        self.trials = trials
        self.drugs = drugs
        self.learned = learned or []
        self.ocr = ocr or []
        self.catalog = TrialCatalog(vocab, trials)  # what matching questions against the trials needs
        self.drug_names = set(drugs)
        self._by_key: dict[str, Trial] = {}
        for t in trials:
            for key in [t.id, *t.nct_ids, *t.registry_ids, *(name_key(n) for n in [t.name, *t.aliases] if n)]:
                self._by_key.setdefault(key.upper(), t)

    # --- lookups -----------------------------------------------------------
    def trial(self, key: str) -> Trial:
        """A trial by id, NCT id or name ('PIVOT-02', 'pivot02', 'NCT02983045')."""
        hit = self._by_key.get(key.upper()) or self._by_key.get(name_key(key))
        if hit is None:
            raise NotFound(f"no trial with id or name '{key}'")
        return hit

    def drug(self, name: str) -> DrugRecord:
        """A drug by any of its names; vocabulary drugs the documents never mention have no trials."""
        canonical = self.vocab.resolve(name, "drug")
        if canonical is None:
            raise NotFound(f"no drug named '{name}' in the vocabulary or the documents")
        if canonical in self.drugs:
            return self.drugs[canonical]
        info = self.vocab.drugs[canonical]
        return DrugRecord(
            info.name,
            list(info.aliases),
            self.vocab.drug_classes(info.name),
            self.vocab.drug_targets(info.name),
            source=info.source,
        )

    def expand_query(self, question: str) -> list[str]:
        """Retrieval terms for ``question``, limited to drugs these documents mention."""
        return expand_query(self.vocab, question, present=self.drug_names)

    def answer_trials(self, question: str) -> list[Trial] | None:
        """The trials a question asks about, in document order; None when the question is not about trials."""
        return answer_trials(self.catalog, question)

    def filter_trials(self, query: TrialQuery, *, documents: Collection[str] | None = None) -> list[Trial]:
        """The trials meeting ``query``, in document order; with ``documents``, those the documents describe
        (see :func:`within_documents`)."""
        found = filter_trials(self.catalog, query)
        return within_documents(found, documents) if documents else found

    def nearest_trials(
        self, query: TrialQuery, k: int = 3, *, documents: Collection[str] | None = None
    ) -> list[Trial]:
        """The trials meeting most of ``query``'s constraints, but not all (for an honest negative)."""
        if not documents:
            return nearest_trials(self.catalog, query, k)
        return within_documents(nearest_trials(self.catalog, query, len(self.trials)), documents)[:k]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per document: trials (by primary evidence), drugs mentioned and outcomes extracted."""
        out: dict[str, dict[str, int]] = {}
        for t in self.trials:
            row = out.setdefault(t.primary.doc_id, {"trials": 0, "drugs": 0, "outcomes": 0})
            row["trials"] += 1
            row["outcomes"] += len(t.outcomes)
        for d in self.drugs.values():
            for doc_id in {e.doc_id for e in d.evidence}:
                out.setdefault(doc_id, {"trials": 0, "drugs": 0, "outcomes": 0})["drugs"] += 1
        return out

    # --- persistence -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "vocabulary": self.vocab.to_dict(),
            "trials": [t.to_dict() for t in self.trials],
            "drugs": [d.to_dict() for d in self.drugs.values()],
            "learned": self.learned,
            "ocr": self.ocr,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> FactStore:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            Vocabulary(data["vocabulary"]),
            [Trial.from_dict(t) for t in data["trials"]],
            {d["name"]: DrugRecord.from_dict(d) for d in data["drugs"]},
            data.get("learned"),
            data.get("ocr"),
        )

    @classmethod
    def for_index(cls, folder: Path, documents: Iterable[Document], passages: Iterable[Passage]) -> FactStore:
        """The store saved with an index; rebuilt in memory for an index built before facts existed."""
        path = Path(folder) / FACTS_FILE
        if path.exists():
            return cls.load(path)
        log.warning("%s has no %s; extracting facts in memory", folder, FACTS_FILE)
        return build_facts(list(documents), list(passages), Vocabulary.load())


def within_documents(trials: list[Trial], documents: Collection[str]) -> list[Trial]:
    """The trials that ``documents`` describe, each as they state it: a record merged from several papers
    keeps only those documents' evidence, so its quote and passage come from them (its fields stay the
    merged record's)."""
    wanted = set(documents)
    out = []
    for t in trials:
        evidence = [e for e in t.evidence if e.doc_id in wanted]
        if evidence:
            out.append(t if len(evidence) == len(t.evidence) else replace(t, evidence=evidence))
    return out


def _carry_context(
    vocab: Vocabulary, trial: Trial, sentences: dict[str, list[Sentence]], finder: PassageFinder
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
    sentences: dict[str, list[Sentence]],
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


def build_facts(documents: list[Document], passages: list[Passage], base: Vocabulary) -> FactStore:
    """Learn from the documents, extract their studies, reconcile table text, and index drugs."""
    vocab = base.copy()
    scans = Scans(vocab)  # each sentence split once, its mentions found again only when they may differ
    learned = grow(vocab, documents, scans)
    finder = PassageFinder(passages)
    drafts = []
    sentences: dict[str, list[Sentence]] = {}
    for doc in documents:
        found, sentences[doc.id] = document_drafts(vocab, doc, scans)
        drafts.extend(found)
    trials = merge_drafts(vocab, drafts, finder)
    for t in trials:
        _carry_context(vocab, t, sentences, finder)
    for doc in documents:
        if is_trial_report(doc, sentences[doc.id]):
            trials = _with_report(vocab, read_report(vocab, doc, sentences[doc.id]), trials, finder)
    trials += table_trials(vocab, documents, finder, trials)
    notes: list[OcrNote] = reconcile_tables(documents, trials, finder)
    order = {d.id: i for i, d in enumerate(documents)}
    trials.sort(key=lambda t: (order.get(t.primary.doc_id, 0), t.primary.start))
    drugs = _drug_records(vocab, sentences, trials, learned, finder)
    return FactStore(vocab, trials, drugs, [f.to_dict() for f in learned], [n.to_dict() for n in notes])


def facts_build_step(build_folder: Path, corpus: Corpus, passages: list[Passage]) -> None:
    """Index-build step: write facts.json beside the passages (the corpus's own vocabulary.json if any)."""
    store = build_facts(corpus.documents, passages, Vocabulary.for_corpus(corpus.root))
    store.save(build_folder / FACTS_FILE)
