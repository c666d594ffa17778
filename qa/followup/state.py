"""The state a conversation turn leaves behind: entities and their roles, the trial filter, trials, topic."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from qa.facts.query import TrialQuery

# What an entity does in the question; a follow-up replaces an entity by one of the same role.
ROLES = {
    "drug": "intervention",
    "class": "intervention",
    "target": "intervention",
    "mech": "intervention",
    "cell": "intervention",
    "condition": "condition",
    "phase": "phase",
    "setting": "setting",
    "status": "status",
    "outcome": "outcome",
    "designation": "designation",
    "agency": "designation",
    "biomarker": "biomarker",
}


@dataclass
class Entity:
    kind: str  # drug | class | target | cell | condition | phase | setting | status | outcome | ...
    name: str  # canonical name
    text: str  # as written in the resolved question
    role: str  # intervention | condition | phase | setting | status | outcome | designation | biomarker


@dataclass
class Topic:
    """What the question is about: "4-1BB agonists", or "nanomaterials targeting cancer-associated fibroblasts"
    (head "nanomaterials", relation "targeting", object "cancer-associated fibroblasts")."""

    phrase: str
    head: str
    relation: str | None = None
    object: str | None = None
    entity: bool = False  # the phrase names a vocabulary entity


@dataclass
class ConversationState:
    """One turn read against the one before: what it asks, with which trial filter, and what it returned."""

    question: str  # the resolved question, a standalone sentence
    move: str = "new"  # new | fresh | replace | narrow | widen | results | item | topic
    entities: list[Entity] = field(default_factory=list)
    filters: dict[str, Any] | None = None  # the TrialQuery as JSON; None when not a question about trials
    scope: list[str] | None = None  # trial ids the filter was applied within (narrowing an earlier list)
    trial_ids: list[str] = field(default_factory=list)  # returned, in the order shown
    trials_total: int | None = None  # how many matched (more than ``trial_ids`` when the answer listed a few)
    topic: Topic | None = None
    passage_ids: list[str] = field(default_factory=list)  # passages cited or listed
    documents: list[str] | None = None  # the document filter (ids); None: every document

    @property
    def about_trials(self) -> bool:
        return self.filters is not None

    @property
    def listed_all(self) -> bool:
        """Whether ``trial_ids`` are every trial that matched (not the first few of more)."""
        return self.trials_total is None or self.trials_total <= len(self.trial_ids)

    def within(self) -> list[str] | None:
        """The scope of a turn that narrows this one's trials: the trials it listed, when they are all that
        matched; else this turn's own scope (its filter, which the narrowing keeps, does the rest)."""
        return list(self.trial_ids) if self.listed_all else self.scope

    def query(self) -> TrialQuery | None:
        return query_from_dict(self.filters) if self.filters is not None else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        data = dict(data)
        entities = [Entity(**e) for e in data.pop("entities", [])]
        topic = data.pop("topic", None)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known, entities=entities, topic=Topic(**topic) if topic else None)


def query_to_dict(query: TrialQuery) -> dict[str, Any]:
    """A TrialQuery as JSON: groups as lists of [kind, name], phases as a sorted list; empty fields left out."""
    out: dict[str, Any] = {}
    for name, value in asdict(query).items():
        if name == "groups":
            value = [[list(item) for item in group] for group in query.groups]
        elif name == "phases":
            value = sorted(query.phases)
        if value:
            out[name] = value
    return out


def query_from_dict(data: dict[str, Any]) -> TrialQuery:
    fields = {k: v for k, v in data.items() if k in TrialQuery.__dataclass_fields__}
    fields["groups"] = [[(k, n) for k, n in group] for group in data.get("groups", [])]
    fields["phases"] = set(data.get("phases", []))
    for name in ("conditions", "settings", "statuses", "trials", "outcomes", "designations", "agencies"):
        fields[name] = list(data.get(name, []))
    fields["biomarkers"] = list(data.get("biomarkers", []))
    return TrialQuery(**fields)
