"""The stages of a question, each a small function over the one ``AskContext``.

Their order is set in ``qa.pipeline.runner.STAGES``; each reads what the stages before it filled in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from qa.answer import HONEST_NEGATIVES, extract_answer
from qa.followup import read_turn, state_of, trials_for
from qa.pipeline.compose import (
    asked_query,
    lead_with_trials,
    reported_by_trials,
    say_no_trial,
    trials_testing,
)
from qa.pipeline.context import AskContext
from qa.retrieval import Hit


def resolve_stage(ctx: AskContext) -> None:
    """Read the question as an edit of the previous turn's state ("what about nivolumab?", "which of them
    are phase 3?", "why have they been hard to develop?")."""
    facts = ctx.services.facts
    previous = state_of(ctx.previous, facts) if ctx.previous else None
    resolution = ctx.resolution_ = read_turn(ctx.question, previous, facts, ctx.requested_documents)
    state = resolution.state
    if state is not None and state.documents:  # a filter kept from a turn before a reload drops lost ids
        indexed = ctx.services.index.documents
        state.documents = [d for d in state.documents if d in indexed] or None


def keyword_stage(ctx: AskContext) -> None:
    """BM25 over the resolved question and its vocabulary expansions (a class brings its member drugs)."""
    services, resolved = ctx.services, ctx.resolution.resolved
    expansions = services.facts.expand_query(resolved) if services.facts else []
    ctx.keyword_scores_ = services.retriever.keyword_scores(resolved, expansions, ctx.documents)


def facts_stage(ctx: AskContext) -> None:
    """The trials the resolved state asks for (within the previous turn's trials when it narrows them);
    when none matches, the records that meet most of the filter, kept apart from ``trials``."""
    facts = ctx.services.facts
    found = trials_for(facts, ctx.resolution, ctx.services.settings.ask_trials_max)
    ctx.trials_total, ctx.trials = found if found is not None else (None, None)
    query = asked_query(ctx.resolution)
    if facts is not None and query is not None and ctx.trials == []:
        ctx.nearest = facts.nearest_trials(query, documents=ctx.documents)


async def dense_stage(ctx: AskContext) -> None:
    """The question's vector from the model, then dense search fused with the keyword side (both within
    the document filter, when there is one)."""
    resolved = ctx.resolution.resolved
    ctx.query_vector_ = await ctx.services.encode_query(resolved)
    hits = ctx.services.retriever.search(
        resolved,
        k=ctx.top_k,
        query_vector=ctx.query_vector_,
        keyword_scores=ctx.keyword_scores,
        documents=ctx.documents,
        evidence=[t.primary.passage_id for t in (ctx.trials or [])[: ctx.top_k] if t.evidence],
    )
    ctx.hits = list(hits)


def answer_stage(ctx: AskContext) -> None:
    """The cited sentences (or the abstention), led by the matching trials when there are any, or by a
    plain "no trial ..." when the question asks for trials and none matches. An honest negative (the
    documents do not mention what the question names, or name it without the asked figure) stands alone."""
    services = ctx.services
    lexicon = services.retriever.lexicon
    answer = ctx.answer_ = extract_answer(
        services.index,
        services.terms,
        ctx.resolution.resolved,
        ctx.query_vector,
        ctx.hits,
        threshold=services.settings.abstain_threshold,
        vocab=services.facts.vocab if services.facts else None,
        lay_phrases=lexicon.lay_phrases(ctx.resolution.resolved) if lexicon else (),
        referenced=services.retriever.referenced(
            ctx.resolution.resolved, [i for h in ctx.hits for i in (h.passage.id, *h.merged)]
        ),
    )
    if answer.reason == "value_not_reported" and ctx.trials is None and services.facts is not None:
        # not a trial question (whose filter, met or not, stands): the trials testing what it names
        testing = trials_testing(services.facts, answer, ctx.documents)
        if testing:
            ctx.trials_total, ctx.trials = len(testing), testing[: services.settings.ask_trials_max]
    if answer.reason == "value_not_reported" and reported_by_trials(answer, ctx.trials or []):
        answer.reason = "answered"  # the matching trials' records hold the asked figure: they lead
    if answer.reason in HONEST_NEGATIVES:
        # A name no document mentions, or a named thing without the asked figure: the trials a filter
        # matched around it do not answer, so they are only the nearest records.
        if ctx.trials:
            ctx.nearest, ctx.trials, ctx.trials_total = ctx.trials, [], 0
        return
    if ctx.trials:
        lead_with_trials(
            answer, ctx.trials, lambda passage_id: _marker_for(ctx, passage_id), total=ctx.trials_total
        )
    elif ctx.trials == []:
        query = asked_query(ctx.resolution)
        if query is not None:
            say_no_trial(
                answer, query, ctx.services.facts, ctx.resolution.resolved, filtered=bool(ctx.documents)
            )


def record_stage(ctx: AskContext) -> Awaitable[None] | None:
    """Record the conversation turn once this step of the event loop (which goes on to send the answer) is
    over, so the writer thread it wakes does not take the GIL while the answer is built. A follow-up still
    sees the turn: it can only arrive after the answer, and its first step is queued after this callback.

    A store shared by replicas is different: the follow-up may reach another process, so the turn is
    committed (on a thread, the event loop serving on) before the answer leaves."""
    conversations = ctx.services.conversations
    if conversations.shared:
        return asyncio.to_thread(conversations.append, ctx.conversation_id, ctx.turn())
    asyncio.get_running_loop().call_soon(conversations.append, ctx.conversation_id, ctx.turn())
    return None


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
