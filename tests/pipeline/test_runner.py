"""The question pipeline: its stage list and order, the timings it reports, typed trials, one recorded turn."""

from __future__ import annotations

import asyncio

import pytest
from conftest import ask_blocking, run_coroutine

from qa.errors import BadInput, NotFound
from qa.facts.model import Trial
from qa.pipeline import STAGES, AskContext, AskResult, Stage, ask
from qa.pipeline.context import StageOrderError
from qa.pipeline.runner import run_stages, start_context
from qa.services import Services

HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"


def test_the_stages_run_in_the_measured_order() -> None:
    names = [s.name for s in STAGES]
    assert names == ["resolve", "keyword", "facts", "dense", "answer", "record"]
    # the reported names are the ones Server-Timing, /metrics and the README promise
    assert {s.timing for s in STAGES} == {"resolve", "retrieval", "facts", "answer", None}


def test_everything_before_the_dense_side_runs_without_the_vector(services: Services) -> None:
    ctx = start_context(services, HEADLINE, conversation_id=None, top_k=5)
    before = STAGES[: [s.name for s in STAGES].index("dense")]
    run_coroutine(run_stages(ctx, before))
    assert ctx.query_vector_ is None and ctx.keyword_scores is not None
    assert ctx.trials and all(isinstance(t, Trial) for t in ctx.trials)
    with pytest.raises(StageOrderError):
        _ = ctx.query_vector


def test_ask_reports_each_stage_and_carries_trials(services: Services) -> None:
    result = ask_blocking(services, HEADLINE)
    assert isinstance(result, AskResult)
    assert list(result.timings) == ["resolve", "retrieval", "facts", "answer"]
    assert all(ms >= 0 for ms in result.timings.values())
    assert result.trials and all(isinstance(t, Trial) for t in result.trials)
    assert not result.abstained and result.answer.text.startswith(f"{len(result.trials)} studies match")


def test_the_turn_is_recorded_once_after_the_answer(services: Services) -> None:
    async def main() -> tuple[int, int]:
        result = await ask(services, HEADLINE)
        pending = services.conversations._pending.get(result.conversation_id, [])
        before = len(pending)  # not yet: the turn is recorded once this step of the loop is over
        await asyncio.sleep(0)
        return before, len(services.conversations.history(result.conversation_id))

    assert run_coroutine(main()) == (0, 1)


def test_a_reference_follow_up_keeps_the_previous_trials(services: Services) -> None:
    first = ask_blocking(services, HEADLINE)
    third = ask_blocking(services, "Which of them are in melanoma?", conversation_id=first.conversation_id)
    assert "melanoma" in third.resolution.resolved
    assert {t.id for t in third.trials} <= {t.id for t in first.trials}


def test_a_stage_added_to_the_list_runs_and_is_timed(services: Services) -> None:
    seen: list[str] = []

    def note(ctx: AskContext) -> None:
        seen.append(ctx.answer.text)

    stages = (*STAGES, Stage("note", note, "note"))
    result = run_coroutine(ask(services, HEADLINE, stages=stages))
    assert isinstance(result, AskResult)
    assert seen == [result.answer.text] and "note" in result.timings


@pytest.mark.parametrize(
    ("question", "top_k", "message"),
    [
        ("", 5, "empty"),
        ("a\x00b", 5, "control characters"),
        ("x" * 1001, 5, "longer than 1000"),
        (HEADLINE, 0, "top_k"),
        (HEADLINE, 21, "top_k"),
    ],
)
def test_bad_questions_are_refused_before_any_stage(
    services: Services, question: str, top_k: int, message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        ask_blocking(services, question, top_k=top_k)


def test_the_question_limit_comes_from_the_settings(services: Services) -> None:
    strict = services.settings.model_copy(update={"max_question_chars": 20})
    ctx = start_context(services, "  short   question ", conversation_id=None, top_k=5)
    assert ctx.question == "short question"
    original = services.settings
    services.settings = strict
    try:
        with pytest.raises(BadInput, match="longer than 20"):
            start_context(services, HEADLINE, conversation_id=None, top_k=5)
    finally:
        services.settings = original


def test_an_unknown_conversation_is_not_found(services: Services) -> None:
    with pytest.raises(NotFound):
        ask_blocking(services, HEADLINE, conversation_id="no-such-conversation")
