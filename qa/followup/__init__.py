"""Follow-ups read as edits of the previous turn's state (entities, trial filter, trials, topic), no language model.

The pipeline calls, per question::

    previous = state_of(history[-1], facts) if history else None     # the stored turn, old rows too
    resolution = read_turn(question, previous, facts)                 # resolve stage
    total, trials = trials_for(facts, resolution, limit) or (0, [])   # facts stage (None: not about trials)
    ... retrieval and answer over resolution.resolved ...
    turn = turn_for(question, resolution, trial_ids, passage_ids, total)  # stored after the answer
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from qa.conversations import Turn
from qa.followup.moves import read
from qa.followup.state import ConversationState, Entity, Topic, query_from_dict, query_to_dict

if TYPE_CHECKING:
    from qa.facts.model import Trial
    from qa.facts.store import FactStore

__all__ = [
    "ConversationState",
    "Entity",
    "Resolution",
    "Topic",
    "query_from_dict",
    "query_to_dict",
    "read_turn",
    "recorded",
    "resolve",
    "state_of",
    "trials_for",
    "turn_for",
]


@dataclass
class Resolution:
    resolved: str  # the standalone question: retrieval and the answer read this
    kind: str = "new"  # the move: new | fresh | replace | narrow | widen | results | item | topic
    entities: dict[str, list[str]] = field(default_factory=dict)  # kind -> canonical names
    state: ConversationState | None = None

    def to_dict(self) -> dict[str, Any]:
        """What a client can show: the move, the filters applied, the trial ids they ran within, the topic."""
        state = self.state or ConversationState(self.resolved)
        return {
            "move": self.kind,
            "filters": state.filters,
            "scope": state.scope,
            "topic": state.topic.phrase if state.topic else None,
            "documents": state.documents,
        }


def read_turn(
    question: str,
    previous: ConversationState | None,
    facts: FactStore | None,
    documents: Sequence[str] | None = None,
) -> Resolution:
    """``question`` read against the previous turn's state (None for the first turn of a conversation).

    ``documents`` is the turn's document filter: None keeps the previous turn's, an empty one lifts it."""
    state = read(question, previous, facts)
    if documents is None:
        documents = previous.documents if previous is not None else None
    state.documents = list(documents) if documents else None
    names: dict[str, list[str]] = {}
    for e in state.entities:
        if e.name not in names.setdefault(e.kind, []):
            names[e.kind].append(e.name)
    return Resolution(state.question, state.move, names, state)


def trials_for(
    facts: FactStore | None, resolution: Resolution, limit: int | None = None
) -> tuple[int, list[Trial]] | None:
    """How many trials the resolved state asks for (within its scope), and the first ``limit`` of them in
    document order; None: not about trials."""
    state = resolution.state
    if facts is None or state is None or state.filters is None:
        return None
    query = query_from_dict(state.filters)
    if state.scope is not None:  # within the trials listed before: the store reads them by id
        allowed = set(state.scope)
        scope = [t for t in query.trials if t in allowed] if query.trials else state.scope
        if not scope:
            return 0, []
        query = replace(query, trials=scope)
    return facts.page_trials(query, documents=state.documents, limit=limit)


def recorded(
    resolution: Resolution, trial_ids: list[str], passage_ids: list[str], trials_total: int | None = None
) -> ConversationState:
    """The state to store for this turn, once its trials (those listed, of ``trials_total`` matching) and
    passages are known."""
    state = resolution.state or ConversationState(resolution.resolved, resolution.kind)
    state.trial_ids = list(trial_ids)
    state.trials_total = len(trial_ids) if trials_total is None else trials_total
    state.passage_ids = list(passage_ids)
    return state


def turn_for(
    question: str,
    resolution: Resolution,
    trial_ids: list[str],
    passage_ids: list[str],
    trials_total: int | None = None,
) -> Turn:
    """The conversation turn to append after answering."""
    state = recorded(resolution, trial_ids, passage_ids, trials_total)
    return Turn(
        question=question,
        resolved=resolution.resolved,
        entities=resolution.entities,
        trial_ids=list(trial_ids),
        about_trials=state.about_trials,
        state=state.to_dict(),
    )


def state_of(turn: Turn, facts: FactStore | None) -> ConversationState:
    """A stored turn's state; a turn stored before states were kept is read again from its resolved question."""
    if turn.state:
        return ConversationState.from_dict(turn.state)
    state = read(turn.resolved, None, facts)
    state.trial_ids = list(turn.trial_ids)
    if not turn.about_trials:
        state.filters = None
    return state


def resolve(question: str, previous: str | None, facts: FactStore | None) -> Resolution:
    """``question`` after a previous question given as text only (no trials, no stored state)."""
    return read_turn(question, read(previous, None, facts) if previous else None, facts)
