"""The one object a question's stages read and fill in, and the result the pipeline hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from qa.answer import Answer
from qa.conversations import Turn
from qa.facts.model import Trial
from qa.followup import Resolution, turn_for
from qa.retrieval import Hit

if TYPE_CHECKING:
    from qa.services import Services

T = TypeVar("T")


class StageOrderError(RuntimeError):
    """A stage read a field that the stages before it should have filled in (the stage list is out of order)."""


@dataclass
class AskContext:
    """A question on its way through the stages; each stage fills in the fields it owns."""

    services: Services
    question: str  # cleaned: white space folded, checked
    top_k: int
    conversation_id: str
    previous: Turn | None  # the conversation's last turn, when this is a follow-up
    requested_documents: tuple[str, ...] | None = None  # the request's document filter, checked (None: unset)
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds by reported stage name

    resolution_: Resolution | None = None  # resolve
    keyword_scores_: np.ndarray | None = None  # keyword side: BM25 over the question and its expansions
    trials: list[Trial] | None = None  # facts: None when the question is not about trials
    trials_total: int | None = None  # facts: how many match (``trials`` lists QA_ASK_TRIALS_MAX at most)
    nearest: list[Trial] = field(default_factory=list)  # facts: closest records when no trial matches
    query_vector_: np.ndarray | None = None  # dense side
    hits: list[Hit] = field(default_factory=list)  # dense side (fused); answer appends cited trials' passages
    answer_: Answer | None = None  # answer

    @property
    def resolution(self) -> Resolution:
        return _filled(self.resolution_, "resolution")

    @property
    def documents(self) -> list[str] | None:
        """The document filter this turn applies (the request's, else the previous turn's); None: all."""
        state = self.resolution.state
        return state.documents if state is not None else None

    @property
    def keyword_scores(self) -> np.ndarray:
        return _filled(self.keyword_scores_, "keyword_scores")

    @property
    def query_vector(self) -> np.ndarray:
        return _filled(self.query_vector_, "query_vector")

    @property
    def answer(self) -> Answer:
        return _filled(self.answer_, "answer")

    def result(self) -> AskResult:
        return AskResult(
            self.conversation_id,
            self.question,
            self.resolution,
            self.answer,
            self.hits,
            self.trials or [],
            self.timings,
            self.nearest,
            self.trials_total,
        )

    def turn(self) -> Turn:
        """The conversation turn a follow-up is read against: the question and its parsed state."""
        return turn_for(
            self.question,
            self.resolution,
            [t.id for t in self.trials or []],
            [h.passage.id for h in self.hits],
            self.trials_total,
        )


def _filled(value: T | None, name: str) -> T:
    if value is None:
        raise StageOrderError(f"{name} is read before the stage that fills it in has run")
    return value


@dataclass
class AskResult:
    conversation_id: str
    question: str
    resolution: Resolution
    answer: Answer
    hits: list[Hit]  # passages cited or listed, in marker order ([1] is hits[0])
    trials: list[Trial] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds by stage
    nearest: list[Trial] = field(default_factory=list)  # no trial matched: the records meeting most of it
    trials_total: int | None = None  # how many match (``trials`` are the first of them); None: not asked

    @property
    def abstained(self) -> bool:
        return self.answer.abstained and not self.trials
