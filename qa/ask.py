"""Answer a question (or a follow-up): resolve it, retrieve, extract cited sentences and matching trials."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.answer import Answer, extract_answer
from qa.conversations import Turn
from qa.errors import BadInput
from qa.followup import Resolution, read_turn, state_of, trials_for, turn_for
from qa.retrieval import Hit
from qa.services import QUERY_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from qa.services import Services
MAX_QUESTION_CHARS = 1000
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, exactly


@dataclass
class AskResult:
    conversation_id: str
    question: str
    resolution: Resolution
    answer: Answer
    hits: list[Hit]  # passages cited or listed, in marker order ([1] is hits[0])
    trials: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds by stage

    @property
    def abstained(self) -> bool:
        return self.answer.abstained and not self.trials


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + (time.perf_counter() - started) * 1000


def clean_question(question: str) -> str:
    """The question with white space folded; BadInput when empty, too long or full of control characters."""
    if not isinstance(question, str):
        raise BadInput("question must be a string")
    text = " ".join(question.split())
    if _CONTROL.search(text):
        raise BadInput("question contains control characters")
    if not text:
        raise BadInput("question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadInput(f"question is longer than {MAX_QUESTION_CHARS} characters")
    return text


def ask(
    services: Services, question: str, *, conversation_id: str | None = None, top_k: int = 5
) -> AskResult:
    """Answer ``question``; blocks the calling thread while the model embeds it (not for the event loop)."""
    with services.busy():
        pending = _start(services, question, conversation_id=conversation_id, top_k=top_k)
        with _timed(pending.timings, "retrieval"):
            qvec = services.encode_query(pending.resolution.resolved)
        result = _finish(services, pending, qvec)
        services.conversations.append(result.conversation_id, _turn(pending, result))
        return result


async def ask_async(
    services: Services, question: str, *, conversation_id: str | None = None, top_k: int = 5
) -> AskResult:
    """``ask`` for the event loop: the model's forward pass is awaited, never waited on by a thread."""
    with services.busy():
        pending = _start(services, question, conversation_id=conversation_id, top_k=top_k)
        with _timed(pending.timings, "retrieval"):
            async with asyncio.timeout(QUERY_TIMEOUT_SECONDS):
                qvec = await services.encode_query_async(pending.resolution.resolved)
        result = _finish(services, pending, qvec)
        # Recorded once this step of the loop (which goes on to send the answer) is over, so the writer
        # thread it wakes does not take the GIL while the answer is built. A follow-up still sees the turn:
        # it can only arrive after the answer, and its first step is queued after this callback.
        asyncio.get_running_loop().call_soon(
            services.conversations.append, result.conversation_id, _turn(pending, result)
        )
        return result


@dataclass
class _Pending:
    """A question between the two halves of ``ask``: everything that does not need its vector is done."""

    question: str
    conversation_id: str
    top_k: int
    resolution: Resolution
    keyword_scores: np.ndarray  # BM25 over the question and its vocabulary expansions
    trials: list[dict[str, Any]] | None
    timings: dict[str, float]


def _start(services: Services, question: str, *, conversation_id: str | None, top_k: int) -> _Pending:
    """Validate, read the question against the conversation, score the keyword side and find the matching
    trials: everything before the question goes to the model.

    The model comes last, not first: a lone question's forward pass gets every core, and work done here
    meanwhile would only compete with it for them (measured slower both ways on two cores)."""
    timings: dict[str, float] = {}
    question = clean_question(question)
    if not 1 <= top_k <= 20:
        raise BadInput("top_k must be between 1 and 20")
    store = services.conversations
    history = store.history(conversation_id) if conversation_id else []
    conversation_id = conversation_id or store.new_id()
    previous = history[-1] if history else None
    facts = services.facts

    with _timed(timings, "resolve"):
        resolution = read_turn(question, state_of(previous, facts) if previous else None, facts)
    resolved = resolution.resolved

    with _timed(timings, "retrieval"):
        expansions = facts.expand(resolved) if facts else []
        keyword_scores = services.retriever.keyword_scores(resolved, expansions)

    with _timed(timings, "facts"):
        trials = trials_for(facts, resolution)

    return _Pending(
        question,
        conversation_id,
        top_k,
        resolution,
        keyword_scores,
        trials,
        timings,
    )


def _finish(services: Services, pending: _Pending, qvec: np.ndarray) -> AskResult:
    """Dense search and fusion, and the extracted answer with its citations."""
    timings = pending.timings
    resolved = pending.resolution.resolved
    with _timed(timings, "retrieval"):
        hits = services.retriever.search(
            resolved,
            k=pending.top_k,
            query_vector=qvec,
            keyword_scores=pending.keyword_scores,
        )

    trials = pending.trials
    with _timed(timings, "answer"):
        answer = extract_answer(
            services.index,
            services.terms,
            resolved,
            qvec,
            hits,
            threshold=services.settings.abstain_threshold,
        )
        hits = list(hits)
        if trials:
            _cite_trials(services, trials, hits, answer)

    return AskResult(
        pending.conversation_id, pending.question, pending.resolution, answer, hits, trials or [], timings
    )


def _turn(pending: _Pending, result: AskResult) -> Turn:
    """The conversation turn a follow-up is read against."""
    trial_ids = [t["id"] for t in result.trials]
    return turn_for(pending.question, pending.resolution, trial_ids, [h.passage.id for h in result.hits])


def _cite_trials(services: Services, trials: list[dict[str, Any]], hits: list[Hit], answer: Answer) -> None:
    """Lead the answer with the matching trials, each cited to the passage its quote comes from."""
    parts = []
    for trial in trials:
        marker = _marker_for(services, trial["passage_id"], hits)
        label = trial_label(trial)
        details = [d for d in (trial.get("phase"), " + ".join(trial.get("interventions") or [])) if d]
        outcomes = ", ".join(f"{o['measure']} {o['value']}" for o in (trial.get("outcomes") or [])[:2])
        if outcomes:
            details.append(outcomes)
        parts.append(f"{label} ({'; '.join(details)}) [{marker}]" if details else f"{label} [{marker}]")
    noun = "study matches" if len(trials) == 1 else "studies match"
    summary = f"{len(trials)} {noun}: " + "; ".join(parts) + "."
    answer.text = summary if answer.abstained else f"{summary} {answer.text}"
    answer.abstained = False


def trial_label(trial: dict[str, Any]) -> str:
    """A trial's name, else its NCT ids, else what it tested in whom ("a trial of SD-101 + ... in melanoma")."""
    if trial.get("name"):
        return str(trial["name"])
    if trial.get("nct_ids"):
        return ", ".join(trial["nct_ids"])
    what = " + ".join(trial.get("interventions") or []) or "an intervention"
    conditions = trial.get("conditions") or []
    return f"a trial of {what}" + (f" in {conditions[0]}" if conditions else "")


def _marker_for(services: Services, passage_id: str, hits: list[Hit]) -> int:
    """1-based position of the hit holding ``passage_id``; the passage is appended when not listed yet."""
    passage = services.index.passage(passage_id)
    for i, hit in enumerate(hits):
        p = hit.passage
        if (
            p.id == passage_id
            or passage_id in hit.merged
            or (p.doc_id == passage.doc_id and p.start <= passage.start and passage.end <= p.end)
        ):
            return i + 1
    hits.append(Hit(passage, 0.0, 0.0, 0.0, rank=len(hits) + 1))
    return len(hits)
