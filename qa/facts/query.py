"""Questions become filters over trials: drugs, classes, targets, conditions, phases, settings and names.

"Which trials combine TLR9 agonists with pembrolizumab?" -> (a member of class 'TLR9 agonist') AND
pembrolizumab. Entities joined by "or" (or "/") are alternatives; joined by anything else, all must hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.facts.entities import _context, resistance_label
from qa.facts.model import Trial
from qa.facts.phases import find_phases, phase_numbers
from qa.facts.studies import NCT_RE, name_key
from qa.facts.vocab import Mention, Vocabulary

_TRIAL_WORDS = re.compile(
    r"\b(?:trials?|stud(?:y|ies)|NCT\d+|phases?|tested|testing|evaluat\w*|investigat\w*|combin\w*|regimens?|enrol\w*|cohorts?)\b",
    re.IGNORECASE,
)
_OR = re.compile(r"\s*(?:,\s*)?(?:or|/|either)\s*(?:the\s+|an?\s+)?", re.IGNORECASE)
_COMMA = re.compile(r"\s*,\s*(?:the\s+)?")
_INTERVENTION_KINDS = ("drug", "class", "target")
_AXIS_WORDS = re.compile(r"\b(?:pathways?|axis|axes|signal(?:l)?ing)\b", re.IGNORECASE)


@dataclass
class TrialQuery:
    """All ``groups`` must hold (each group: any of its (kind, name) items); then conditions, phases ..."""

    groups: list[list[tuple[str, str]]] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    phases: set[int] = field(default_factory=set)
    settings: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    trials: list[str] = field(default_factory=list)  # trial ids named in the question
    axis: bool = False  # "the PD-L1 pathway": a target stands for its whole ligand/receptor axis

    @property
    def empty(self) -> bool:
        return not (
            self.groups or self.conditions or self.phases or self.settings or self.statuses or self.trials
        )


def _connector(text: str) -> str:
    if _OR.fullmatch(text):
        return "or"
    if _COMMA.fullmatch(text):
        return ","
    return "and"


def _groups(question: str, items: list[Mention]) -> list[list[tuple[str, str]]]:
    """Group entity mentions by their connectors; a run of commas takes the kind of the connector ending it."""
    links = [_connector(question[a.end : b.start]) for a, b in zip(items, items[1:], strict=False)]
    resolved = list(links)
    for i in range(len(resolved) - 1, -1, -1):
        if resolved[i] == ",":
            resolved[i] = resolved[i + 1] if i + 1 < len(resolved) else "and"
    groups: list[list[tuple[str, str]]] = []
    for i, m in enumerate(items):
        item = (m.kind, m.name)
        if i and resolved[i - 1] == "or":
            if item not in groups[-1]:
                groups[-1].append(item)
        elif not any(item in g for g in groups):
            groups.append([item])
    return groups


class TrialCatalog:
    """One store's trials with what matching them needs, worked out once (trials do not change once loaded):
    trial ids by the key of each name and alias, and each trial's conditions with their ancestors."""

    def __init__(self, vocab: Vocabulary, trials: list[Trial]) -> None:
        self.vocab = vocab
        self.trials = trials
        self.by_name_key: dict[str, list[str]] = {}
        for t in trials:
            for key in dict.fromkeys(name_key(n) for n in [t.name, *t.aliases] if n):
                self.by_name_key.setdefault(key, []).append(t.id)
        self.closures = [_condition_closure(vocab, t) for t in trials]

    def named_trials(self, question: str) -> list[str]:
        """Ids of the trials a question names, by NCT id or by name."""
        ids = [t.id for n in NCT_RE.findall(question) for t in self.trials if n in t.nct_ids]
        for token in re.findall(r"[A-Za-z0-9][A-Za-z0-9-]*(?:\s\d+)?", question):
            key = name_key(token)
            if len(key) >= 4:
                ids.extend(self.by_name_key.get(key, ()))
        return list(dict.fromkeys(ids))


def parse_question(
    vocab: Vocabulary, question: str, catalog: TrialCatalog | None = None
) -> TrialQuery | None:
    """The filter a question asks for, or None when it is not a question about trials; with ``catalog`` the
    trials it names are part of the filter."""
    mentions = vocab.find(question)
    query = TrialQuery()
    if catalog is not None:
        query.trials = catalog.named_trials(question)
    interventions: list[Mention] = []
    prev: tuple[Mention, str | None] | None = None
    for m in mentions:
        if m.kind in _INTERVENTION_KINDS:
            ctx = _context(question, m, 0, prev)
            prev = (m, ctx)
            if ctx == "resist":
                query.settings.append(resistance_label(vocab, m))
            elif ctx is None:
                interventions.append(m)
        elif m.kind == "condition" and m.name not in query.conditions:
            query.conditions.append(m.name)
        elif m.kind == "setting" and m.name not in query.settings:
            query.settings.append(m.name)
        elif m.kind == "status" and m.name not in query.statuses:
            query.statuses.append(m.name)
    query.groups = _groups(question, interventions)
    query.axis = bool(_AXIS_WORDS.search(question))
    for _s, _e, phase in find_phases(question):
        query.phases |= phase_numbers(phase)
    if query.trials:
        return query
    if query.empty or not _TRIAL_WORDS.search(question):
        return None
    return query


# --- matching -----------------------------------------------------------------
def _item_matches(vocab: Vocabulary, trial: Trial, kind: str, name: str, axis: bool = False) -> bool:
    if kind == "drug":
        return name in trial.interventions
    if kind == "class":
        if name in trial.drug_classes:
            return True
        targets = set(vocab.class_targets(name))
        return not trial.interventions and bool(targets) and targets <= set(trial.targets)
    wanted = vocab.axis(name) if axis else {name}  # "the PD-L1 pathway" is the PD-1/PD-L1 axis
    return bool(wanted & set(trial.targets))


def _setting_key(setting: str) -> str:
    return setting.lower().replace("refractory", "resistant")


def _setting_matches(wanted: str, have: list[str]) -> bool:
    key = _setting_key(wanted)
    keys = [_setting_key(h) for h in have]
    if key == "resistant":
        return any(k.endswith("resistant") for k in keys)
    return key in keys


def matches(
    vocab: Vocabulary, trial: Trial, query: TrialQuery, conditions: frozenset[str] | None = None
) -> bool:
    """Whether ``trial`` meets ``query``; ``conditions``: the trial's conditions with their ancestors, when
    the caller has them at hand."""
    if query.trials and trial.id not in query.trials:
        return False
    if not all(
        any(_item_matches(vocab, trial, k, n, query.axis) for k, n in group) for group in query.groups
    ):
        return False
    if query.conditions:
        have = _condition_closure(vocab, trial) if conditions is None else conditions
        if not any(c in have for c in query.conditions):
            return False
    if query.phases and not (phase_numbers(trial.phase) & query.phases):
        return False
    if not all(_setting_matches(s, trial.setting) for s in query.settings):
        return False
    return not (query.statuses and trial.status not in query.statuses)


def _condition_closure(vocab: Vocabulary, trial: Trial) -> frozenset[str]:
    return frozenset(a for c in trial.conditions for a in vocab.condition_ancestors(c))


def filter_trials(catalog: TrialCatalog, query: TrialQuery) -> list[Trial]:
    vocab = catalog.vocab
    return [t for t, c in zip(catalog.trials, catalog.closures, strict=True) if matches(vocab, t, query, c)]


def answer_trials(catalog: TrialCatalog, question: str) -> list[Trial] | None:
    """The trials a question asks about, in document order; None when the question is not about trials."""
    query = parse_question(catalog.vocab, question, catalog)
    if query is None:
        return None
    return filter_trials(catalog, query)


def expand_query(vocab: Vocabulary, question: str, present: set[str] | None = None) -> list[str]:
    """Extra keyword terms for retrieval: a class brings its member drugs, a drug its other names.

    ``present`` limits expansions to drugs the corpus mentions (FactStore.expand_query passes them).
    """
    terms: dict[str, None] = {}
    mentions = vocab.find(question)
    asked = {m.text.lower() for m in mentions}

    def drug_terms(name: str) -> None:
        if present is not None and name not in present:
            return
        info = vocab.drugs[name]
        for term in [info.name, *info.aliases]:
            if term.lower() not in asked:
                terms.setdefault(term, None)

    for m in mentions:
        if m.kind == "drug":
            drug_terms(m.name)
        elif m.kind == "class":
            for name in sorted(vocab.class_members(m.name)):
                drug_terms(name)
            for syn in vocab.classes[m.name].synonyms[:4]:
                if syn.lower() not in asked:
                    terms.setdefault(syn, None)
        elif m.kind == "target" and present is not None:
            axis = vocab.axis(m.name)
            for name in sorted(present):
                if name in vocab.drugs and not axis.isdisjoint(vocab.drug_targets(name)):
                    drug_terms(name)
        elif m.kind == "condition":
            for syn in [m.name, *vocab.conditions[m.name].synonyms][:4]:
                if syn.lower() not in asked:
                    terms.setdefault(syn, None)
    return list(terms)
