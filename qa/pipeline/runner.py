"""The one question path: the stage list, and ``ask``, which runs it in order and times each stage."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from qa.pipeline.context import AskContext, AskResult
from qa.pipeline.question import check_top_k, clean_question
from qa.pipeline.stages import (
    answer_stage,
    dense_stage,
    facts_stage,
    keyword_stage,
    record_stage,
    resolve_stage,
)

if TYPE_CHECKING:
    from qa.conversations import Turn
    from qa.services import Services


T = TypeVar("T")


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(make())`` from code that is not async (the CLI, ``qa eval``), also where this thread
    already runs an event loop (a notebook's kernel, a browser driver), which ``asyncio.run`` refuses: there
    the coroutine runs to its end in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(1, thread_name_prefix="qa-blocking") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[AskContext], Awaitable[None] | None]
    timing: str | None  # the name its time is reported under (Server-Timing, /metrics); None: not timed


# Everything that does not need the question's vector comes before the dense side, so that a lone question's
# forward pass has every core to itself: work done while it runs would only compete with it for them.
# Stages reported under one name (the keyword and dense sides are both "retrieval") add up.
STAGES: tuple[Stage, ...] = (
    Stage("resolve", resolve_stage, "resolve"),
    Stage("keyword", keyword_stage, "retrieval"),
    Stage("facts", facts_stage, "facts"),
    Stage("dense", dense_stage, "retrieval"),
    Stage("answer", answer_stage, "answer"),
    Stage("record", record_stage, None),
)


async def ask(
    services: Services,
    question: str,
    *,
    conversation_id: str | None = None,
    top_k: int = 5,
    documents: Iterable[str] | None = None,
    stages: tuple[Stage, ...] = STAGES,
) -> AskResult:
    """Answer ``question`` (a follow-up when ``conversation_id`` names a conversation) with cited sentences
    and the trials it asks about. Must run on the event loop: the model's forward pass is awaited.

    ``documents`` restricts the passages and trials to those document ids (UnknownDocument for an id not
    indexed); a follow-up without it keeps the previous turn's filter, and an empty one lifts it."""
    with services.busy():
        store = services.conversations
        # A shared store's history is a database round trip: read on a thread, it does not hold the loop.
        history = await store.history_async(conversation_id) if conversation_id and store.shared else None
        ctx = start_context(
            services,
            question,
            conversation_id=conversation_id,
            top_k=top_k,
            documents=documents,
            history=history,
        )
        await run_stages(ctx, stages)
        return ctx.result()


def start_context(
    services: Services,
    question: str,
    *,
    conversation_id: str | None,
    top_k: int,
    documents: Iterable[str] | None = None,
    history: list[Turn] | None = None,
) -> AskContext:
    """The checked question, document filter and conversation (NotFound for an unknown conversation id);
    ``history``: the conversation's turns when the caller has read them already."""
    question = clean_question(question, services.settings.max_question_chars)
    check_top_k(top_k)
    requested = services.index.check_documents(documents)
    store = services.conversations
    if history is None:
        history = store.history(conversation_id) if conversation_id else []
    return AskContext(
        services,
        question,
        top_k,
        conversation_id or store.new_id(),
        history[-1] if history else None,
        requested,
    )


async def run_stages(ctx: AskContext, stages: tuple[Stage, ...] = STAGES) -> None:
    """Run ``stages`` in order, adding each one's milliseconds to ``ctx.timings`` under its timing name."""
    timings = ctx.timings
    for stage in stages:
        started = time.perf_counter()
        pending = stage.run(ctx)
        if inspect.isawaitable(pending):
            await pending
        if stage.timing is not None:
            timings[stage.timing] = timings.get(stage.timing, 0.0) + (time.perf_counter() - started) * 1000
