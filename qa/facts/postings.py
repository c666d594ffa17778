"""Which trials can meet a query: the terms each trial is filed under, and the terms a query needs.

The fact store keeps one posting list (trial rows) per term: ``drug:``, ``class:``, ``target:``, ``cond:``
(a condition and its ancestors), ``phase:``, ``setting:``, ``status:``, ``outcome:`` (a measure and the
measures it is a kind of), ``designation:`` (every word-final part: 'FDA Fast Track' is filed under 'Fast
Track' and 'Track' too), ``doc:`` (a document quoted as evidence), ``id:`` and ``has:biomarker``.

A query becomes *needs*: every need must hold; a need holds for the rows of any of its alternatives; an
alternative is a list of terms, all of which a row must be filed under. The rows so found are a superset of
the trials meeting the query, each of which :func:`qa.facts.query.matches` then checks, so a store answers
exactly what a scan of every trial would.
"""

from __future__ import annotations

from collections.abc import Collection

from qa.facts.model import Trial
from qa.facts.phases import phase_numbers
from qa.facts.query import PRETREATED, TrialQuery, condition_closure, outcome_base, setting_key
from qa.facts.vocab import Vocabulary

Need = list[list[str]]  # alternatives, each a conjunction of terms


def trial_terms(vocab: Vocabulary, trial: Trial) -> set[str]:
    """Every term ``trial`` is filed under (see the module doc)."""
    terms = {f"id:{trial.id}"}
    terms.update(f"drug:{d}" for d in trial.interventions)
    terms.update(f"class:{c}" for c in trial.drug_classes)
    terms.update(f"target:{t}" for t in trial.targets)
    terms.update(f"cond:{c}" for c in condition_closure(vocab, trial))
    terms.update(f"phase:{n}" for n in phase_numbers(trial.phase))
    if trial.status:
        terms.add(f"status:{trial.status}")
    keys = [setting_key(s) for s in trial.setting]
    terms.update(f"setting:{k}" for k in keys)
    if any(k.endswith("resistant") for k in keys):
        terms.add("setting:resistant")
    if any(k in PRETREATED or k.endswith("resistant") for k in keys):
        terms.add("setting:previously treated")
    for o in trial.outcomes:
        terms.update(f"outcome:{a}" for a in vocab.outcome_ancestors(outcome_base(o.measure)))
    for d in trial.designations:
        words = d.split(" ")
        terms.update(f"designation:{' '.join(words[i:])}" for i in range(len(words)))
    if trial.biomarkers:
        terms.add("has:biomarker")
    terms.update(f"doc:{e.doc_id}" for e in trial.evidence)
    return terms


def _item(vocab: Vocabulary, kind: str, name: str, axis: bool) -> Need:
    """The alternatives under which a trial meeting one group item is filed (see ``_item_matches``)."""
    if kind == "drug":
        return [[f"drug:{name}"]]
    if kind == "class":
        targets = vocab.class_targets(name)
        return [[f"class:{name}"], *([[f"target:{t}" for t in targets]] if targets else [])]
    if kind == "mech":
        return [[f"target:{name.split('|')[0]}"]]
    wanted = vocab.axis(name) if axis else {name}
    return [[f"target:{t}"] for t in sorted(wanted)]


def query_needs(vocab: Vocabulary, query: TrialQuery, documents: Collection[str] | None = None) -> list[Need]:
    """The needs of ``query`` (with ``documents``: evidence quoted from one of them); none: every trial."""
    needs: list[Need] = []
    if query.trials:
        needs.append([[f"id:{t}"] for t in query.trials])
    for group in query.groups:
        needs.append([alt for kind, name in group for alt in _item(vocab, kind, name, query.axis)])
    if query.conditions:
        needs.append([[f"cond:{c}"] for c in query.conditions])
    if query.phases:
        needs.append([[f"phase:{n}"] for n in sorted(query.phases)])
    needs += [[[f"setting:{setting_key(s)}"]] for s in query.settings]
    if query.statuses:
        needs.append([[f"status:{s}"] for s in query.statuses])
    if query.outcomes:
        needs.append([[f"outcome:{o}"] for o in query.outcomes])
    if query.designations:
        needs.append([[f"designation:{d}"] for d in query.designations])
    if query.biomarkers:
        needs.append([["has:biomarker"]])
    if documents:
        needs.append([[f"doc:{d}"] for d in sorted(documents)])
    return needs
