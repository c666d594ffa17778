"""Questions become filters over trials: drugs, classes, targets, conditions, phases, settings and names.

"Which trials combine TLR9 agonists with pembrolizumab?" -> (a member of class 'TLR9 agonist') AND
pembrolizumab. Entities joined by "or" (or "/") are alternatives; joined by anything else, all must hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from qa.facts.biomarkers import biomarker_satisfies, find_biomarkers
from qa.facts.entities import _context, resistance_label
from qa.facts.model import Trial
from qa.facts.phases import find_phases, phase_numbers
from qa.facts.vocab import Mention, Vocabulary, action_word

_TRIAL_WORDS = re.compile(
    r"\b(?:trials?|stud(?:y|ies)|NCT\d+|phases?|tested|testing|evaluat\w*|investigat\w*|combin\w*|regimens?|enrol\w*|cohorts?)\b",
    re.IGNORECASE,
)
_OR = re.compile(r"\s*(?:,\s*)?(?:or|/|either)\s*(?:the\s+|an?\s+)?", re.IGNORECASE)
_COMMA = re.compile(r"\s*,\s*(?:the\s+)?")
_INTERVENTION_KINDS = ("drug", "class", "target")
_AXIS_WORDS = re.compile(r"\b(?:pathways?|axis|axes|signal(?:l)?ing)\b", re.IGNORECASE)
# A class phrase around a target the vocabulary has no class name for: "TIGIT blockers", "LAG-3-targeting
# agents", "agonists of TLR9", "drugs acting on tumour-associated macrophages".
_HEAD_AFTER = re.compile(
    r"^\s?-?\s?(?:(?:targeting|targeted|directed|based)\s+)?(?P<head>inhibitors?|inhibition|blockers?|blockade|"
    r"antagonists?|antibod(?:y|ies)|mAbs?|agonists?|activators?|agents?|drugs?|therap(?:y|ies)|compounds?|molecules?)\b",
    re.IGNORECASE,
)
_HEAD_BEFORE = re.compile(
    r"\b(?P<head>inhibitors?|blockers?|antagonists?|antibod(?:y|ies)|agonists?|activators?|agents?|drugs?|therap(?:y|ies)|"
    r"compounds?)\s+(?:that\s+)?(?:of|against|targeting|target|acting\s+on|act\s+on|directed\s+(?:at|against)|"
    r"depleting|deplete|reprogramming|modulating|blocking|block|stimulating|activating)\s+(?:the\s+)?$",
    re.IGNORECASE,
)
_CELL_CUE = re.compile(
    r"\b(?:acting\s+on|act\s+on|acts\s+on|targeting|target|targets|against|directed\s+(?:at|against)|on|"
    r"depleting|deplete|reprogramming|reprogram|modulating|modulate|repolari[sz]ing)\s+(?:the\s+)?$",
    re.IGNORECASE,
)
# "Which trials reported an ORR?": an outcome is a filter when the question selects trials by it, not when it
# asks for its value ("What ORR did PIVOT-02 report?").
_OUTCOME_CUE = re.compile(
    r"\b(?:report\w*|show\w*|achiev\w*|observ\w*|demonstrat\w*|produc\w*|yield\w*|induc\w*|record\w*|"
    r"publish\w*|measur\w*|with|had|has|have|gave|give|see|saw|seen)\b(?:\s+[\w-]+){0,4}?\s+$",
    re.IGNORECASE,
)


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
    outcomes: list[str] = field(default_factory=list)  # measures the trial reported (any of them)
    designations: list[str] = field(default_factory=list)  # regulatory designations (any of them)
    agencies: list[str] = field(default_factory=list)  # the agency granting a designation, when named
    biomarkers: list[str] = field(default_factory=list)  # "PD-L1 ≥ 50%": every one must be met

    @property
    def empty(self) -> bool:
        return not (
            self.groups
            or self.conditions
            or self.phases
            or self.settings
            or self.statuses
            or self.trials
            or self.outcomes
            or self.designations
            or self.biomarkers
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


class NamedTrials(Protocol):
    """What parsing a question needs of a store's trials: the ids of those it names (by NCT id or name)."""

    def named_trials(self, question: str) -> list[str]: ...


def parse_question(vocab: Vocabulary, question: str, catalog: NamedTrials | None = None) -> TrialQuery | None:
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
                interventions.append(_mechanism(question, m))
        elif m.kind == "cell" and _CELL_CUE.search(question[max(0, m.start - 40) : m.start]):
            interventions.append(m)
        elif m.kind == "outcome" and _OUTCOME_CUE.search(question[: m.start]):
            query.outcomes.append(m.name)
        elif m.kind == "designation" and m.name not in query.designations:
            query.designations.append(m.name)
        elif m.kind == "agency" and m.name not in query.agencies:
            query.agencies.append(m.name)
        elif m.kind == "condition" and m.name not in query.conditions:
            query.conditions.append(m.name)
        elif m.kind == "setting" and m.name not in query.settings:
            query.settings.append(m.name)
        elif m.kind == "status" and m.name not in query.statuses:
            query.statuses.append(m.name)
    query.groups = [_cells(vocab, g) for g in _groups(question, interventions)]
    query.biomarkers = find_biomarkers(question, mentions, 0, len(question))
    query.axis = bool(_AXIS_WORDS.search(question))
    for _s, _e, phase in find_phases(question):
        query.phases |= phase_numbers(phase)
    if query.trials:
        return query
    if query.empty or not (_TRIAL_WORDS.search(question) or query.designations):
        return None
    return query


def _mechanism(question: str, m: Mention) -> Mention:
    """A bare target named as a class ("TIGIT blockers", "agonists of TLR9") becomes a 'mech' mention whose
    name is 'target|action', so that the direction the phrase states is kept."""
    if m.kind != "target":
        return m
    after = _HEAD_AFTER.match(question[m.end : m.end + 40])
    before = _HEAD_BEFORE.search(question[max(0, m.start - 60) : m.start])
    head = after or before
    if head is None and not question[max(0, m.start - 5) : m.start].lower().endswith("anti-"):
        return m
    action = action_word(head.group("head")) if head else "inhibit"
    return Mention("mech", f"{m.name}|{action or ''}", m.start, m.end, m.text)


def _cells(vocab: Vocabulary, group: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A cell type ("tumour-associated macrophages") stands for the targets through which drugs act on it."""
    out: list[tuple[str, str]] = []
    for kind, name in group:
        if kind == "cell":
            out.extend(("mech", f"{t}||{name}") for t in vocab.entries["cell"][name].targets)
        else:
            out.append((kind, name))
    return list(dict.fromkeys(out))


# --- matching -----------------------------------------------------------------
def acts_on(vocab: Vocabulary, trial: Trial, targets: set[str], action: str | None) -> bool:
    """Whether the trial acts on all of ``targets`` in direction ``action`` (None: any).

    An intervention the vocabulary gives no direction on those targets counts (eftilagimod alpha, a soluble
    LAG-3 protein, is a LAG-3-targeting agent); one acting the other way (an agonist for 'inhibitors', a vaccine
    against the target) does not. A trial whose text names the targets without a drug acting on them counts.
    """
    if not targets or not targets <= set(trial.targets):
        return False
    acting: set[str | None] = set()
    for name in trial.interventions:
        if name in vocab.drugs:
            acting |= vocab.drug_actions(name, targets)
        elif targets & set(vocab.class_targets(name)):
            acting.add(vocab.class_action(name))
    if not acting or action is None:
        return True
    return bool(acting & {None, action})


def _item_matches(vocab: Vocabulary, trial: Trial, kind: str, name: str, axis: bool = False) -> bool:
    if kind == "drug":
        return name in trial.interventions
    if kind == "class":
        if name in trial.drug_classes:
            return True
        return acts_on(vocab, trial, set(vocab.class_targets(name)), vocab.class_action(name))
    if kind == "mech":
        target, action, *_via = name.split("|")  # target|action, or target||cell for a cell type
        return acts_on(vocab, trial, {target}, action or None)
    wanted = vocab.axis(name) if axis else {name}  # "the PD-L1 pathway" is the PD-1/PD-L1 axis
    return bool(wanted & set(trial.targets))


def setting_key(setting: str) -> str:
    return setting.lower().replace("refractory", "resistant")


PRETREATED = ("previously treated", "second-line", "third-line", "fourth-line", "refractory")


def _setting_matches(wanted: str, have: list[str]) -> bool:
    key = setting_key(wanted)
    keys = [setting_key(h) for h in have]
    if key == "resistant":
        return any(k.endswith("resistant") for k in keys)
    if key == "previously treated":  # a later line, or disease resistant to an earlier therapy
        return any(k in PRETREATED or k.endswith("resistant") for k in keys)
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
        have = condition_closure(vocab, trial) if conditions is None else conditions
        if not any(c in have for c in query.conditions):
            return False
    if query.phases and not (phase_numbers(trial.phase) & query.phases):
        return False
    if not all(_setting_matches(s, trial.setting) for s in query.settings):
        return False
    if query.statuses and trial.status not in query.statuses:
        return False
    if query.outcomes and not _outcome_matches(vocab, trial, query.outcomes):
        return False
    if query.designations and not _designation_matches(trial, query.designations, query.agencies):
        return False
    return all(any(biomarker_satisfies(h, w) for h in trial.biomarkers) for w in query.biomarkers)


def outcome_base(measure: str) -> str:
    """The measure a landmark one is a kind of: '12-month OS' -> 'OS'."""
    return re.sub(r"^\d+-(?:month|year|week) ", "", measure)


def _outcome_matches(vocab: Vocabulary, trial: Trial, wanted: list[str]) -> bool:
    """A reported measure, or a narrower kind of it ('mOS' and '12-month OS' are overall survival)."""
    return any(vocab.outcome_ancestors(outcome_base(o.measure)) & set(wanted) for o in trial.outcomes)


def _designation_matches(trial: Trial, wanted: list[str], agencies: list[str]) -> bool:
    """'FDA Fast Track' meets 'Fast Track'; with an agency named, only that agency's designation does."""
    for d in trial.designations:
        for w in wanted:
            if d == w or d.endswith(f" {w}"):
                agency = d[: -len(w)].strip()
                if not agencies or not agency or agency in agencies:
                    return True
    return False


def condition_closure(vocab: Vocabulary, trial: Trial) -> frozenset[str]:
    return frozenset(a for c in trial.conditions for a in vocab.condition_ancestors(c))


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


# --- describing and near misses ---------------------------------------------------
_CLASS_HEAD = re.compile(
    r"(?:inhibitor|agonist|antagonist|vaccine|virus|therapy|antibody|engager|conjugate)$"
)


def _plural(phrase: str) -> str:
    if phrase.endswith("y") and not phrase.endswith("therapy"):
        return phrase[:-1] + "ies"
    return phrase if phrase.endswith(("s", "therapy")) else phrase + "s"


def _describe_item(vocab: Vocabulary, kind: str, name: str) -> str:
    if kind == "class":
        entry = vocab.classes.get(name)
        named = next((s for s in [name, *(entry.synonyms if entry else [])] if _CLASS_HEAD.search(s)), name)
        return _plural(named)
    if kind == "mech":
        target, action, *_via = name.split("|")
        return {"inhibit": f"{target} inhibitors", "agonist": f"{target} agonists"}.get(
            action, f"agents targeting {target}"
        )
    return f"agents targeting {name}" if kind == "target" else name


def describe_query(query: TrialQuery, vocab: Vocabulary | None = None) -> str:
    """The filter as a phrase: 'pembrolizumab in glioblastoma', 'LAG-3 inhibitors with pembrolizumab, phase 2'."""
    vocab = vocab or Vocabulary.load()
    groups = []
    for g in query.groups:
        cells = {n.split("|")[2] for k, n in g if k == "mech" and n.count("|") == 2}
        if len(cells) == 1 and all(k == "mech" for k, _n in g):
            groups.append(f"drugs acting on {_plural(cells.pop())}")
        else:
            groups.append(" or ".join(_describe_item(vocab, k, n) for k, n in g))
    text = " with ".join(groups[:1] + [" and ".join(groups[1:])] if len(groups) > 1 else groups)
    if query.conditions:
        text = f"{text} in {' or '.join(query.conditions)}".strip()
    extra = list(query.settings) + list(query.biomarkers)
    if query.phases:
        extra.append("phase " + " or ".join(str(p) for p in sorted(query.phases)))
    extra += query.statuses
    if query.outcomes:
        extra.append("reporting " + " or ".join(query.outcomes))
    if query.designations:
        agency = f"{' or '.join(query.agencies)} " if query.agencies else ""
        extra.append(f"with {agency}{' or '.join(query.designations)} designation")
    if query.trials:
        extra.append("trial " + " or ".join(query.trials))
    return ", ".join(p for p in [text, *extra] if p) or "any trial"


def constraints(query: TrialQuery) -> list[TrialQuery]:
    """The query split into single-constraint queries, one per thing a trial must meet."""
    parts = [TrialQuery(groups=[g], axis=query.axis) for g in query.groups]
    parts += [TrialQuery(conditions=list(query.conditions))] if query.conditions else []
    parts += [TrialQuery(phases=set(query.phases))] if query.phases else []
    parts += [TrialQuery(settings=[s]) for s in query.settings]
    parts += [TrialQuery(statuses=list(query.statuses))] if query.statuses else []
    parts += [TrialQuery(outcomes=list(query.outcomes))] if query.outcomes else []
    if query.designations:
        parts.append(TrialQuery(designations=list(query.designations), agencies=list(query.agencies)))
    parts += [TrialQuery(biomarkers=[b]) for b in query.biomarkers]
    return parts
