"""The stages of a question, each a small function over the one ``AskContext``.

Their order is set in ``qa.pipeline.runner.STAGES``; each reads what the stages before it filled in.
"""

from __future__ import annotations

import asyncio

from qa.answer import Answer, extract_answer
from qa.facts.model import Trial
from qa.followup import resolve
from qa.pipeline.context import AskContext
from qa.retrieval import Hit


def resolve_stage(ctx: AskContext) -> None:
    """Read the question against the conversation's previous turn ("what about nivolumab?")."""
    facts = ctx.services.facts
    previous = ctx.previous.resolved if ctx.previous else None
    ctx.resolution_ = resolve(ctx.question, previous, facts.vocab if facts else None)


def keyword_stage(ctx: AskContext) -> None:
    """BM25 over the resolved question and its vocabulary expansions (a class brings its member drugs)."""
    services, resolved = ctx.services, ctx.resolution.resolved
    expansions = services.facts.expand_query(resolved) if services.facts else []
    ctx.keyword_scores_ = services.retriever.keyword_scores(resolved, expansions)


def facts_stage(ctx: AskContext) -> None:
    """The trials the question asks about; a reference follow-up ("which of them ...") keeps the previous
    turn's trials only."""
    facts = ctx.services.facts
    trials = facts.answer_trials(ctx.resolution.resolved) if facts else None
    previous = ctx.previous
    if trials is not None and ctx.resolution.kind == "reference" and previous and previous.trial_ids:
        kept = set(previous.trial_ids)
        trials = [t for t in trials if t.id in kept]
    ctx.trials = trials


async def dense_stage(ctx: AskContext) -> None:
    """The question's vector from the model, then dense search fused with the keyword side."""
    resolved = ctx.resolution.resolved
    ctx.query_vector_ = await ctx.services.encode_query(resolved)
    hits = ctx.services.retriever.search(
        resolved, k=ctx.top_k, query_vector=ctx.query_vector_, keyword_scores=ctx.keyword_scores
    )
    ctx.hits = list(hits)


def answer_stage(ctx: AskContext) -> None:
    """The cited sentences (or the abstention), led by the matching trials when there are any."""
    services = ctx.services
    ctx.answer_ = extract_answer(
        services.index,
        services.terms,
        ctx.resolution.resolved,
        ctx.query_vector,
        ctx.hits,
        threshold=services.settings.abstain_threshold,
    )
    if ctx.trials:
        _cite_trials(ctx, ctx.trials, ctx.answer_)


def record_stage(ctx: AskContext) -> None:
    """Record the conversation turn once this step of the event loop (which goes on to send the answer) is
    over, so the writer thread it wakes does not take the GIL while the answer is built. A follow-up still
    sees the turn: it can only arrive after the answer, and its first step is queued after this callback."""
    conversations = ctx.services.conversations
    asyncio.get_running_loop().call_soon(conversations.append, ctx.conversation_id, ctx.turn())


def _cite_trials(ctx: AskContext, trials: list[Trial], answer: Answer) -> None:
    """Lead the answer with the matching trials, each cited to the passage its quote comes from."""
    parts = []
    for trial in trials:
        marker = _marker_for(ctx, trial.primary.passage_id)
        label = trial_label(trial)
        details = [d for d in (trial.phase, " + ".join(trial.interventions)) if d]
        outcomes = ", ".join(f"{o.measure} {o.value}" for o in trial.outcomes[:2])
        if outcomes:
            details.append(outcomes)
        parts.append(f"{label} ({'; '.join(details)}) [{marker}]" if details else f"{label} [{marker}]")
    noun = "study matches" if len(trials) == 1 else "studies match"
    summary = f"{len(trials)} {noun}: " + "; ".join(parts) + "."
    answer.text = summary if answer.abstained else f"{summary} {answer.text}"
    answer.abstained = False


def trial_label(trial: Trial) -> str:
    """A trial's name, else its NCT ids, else what it tested in whom ("a trial of SD-101 + ... in melanoma")."""
    if trial.name:
        return trial.name
    if trial.nct_ids:
        return ", ".join(trial.nct_ids)
    what = " + ".join(trial.interventions) or "an intervention"
    return f"a trial of {what}" + (f" in {trial.conditions[0]}" if trial.conditions else "")


def _marker_for(ctx: AskContext, passage_id: str) -> int:
    """1-based position of the hit holding ``passage_id``; the passage is appended when not listed yet."""
    hits = ctx.hits
    passage = ctx.services.index.passage(passage_id)
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
