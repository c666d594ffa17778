"""An answer lists at most QA_ASK_TRIALS_MAX matching trials and counts them all; a follow-up that narrows a
cut list narrows every trial that matched, not only those shown (on a library of millions of papers one
question can match tens of thousands of trials)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import ask_blocking
from fastapi.testclient import TestClient

from qa.services import Services

BROAD = "Which trials test PD-1 inhibitors?"
NARROW = "Which of them are phase 2?"
CAP = 5


@pytest.fixture
def capped(services: Services) -> Iterator[Services]:
    original = services.settings
    services.settings = original.model_copy(update={"ask_trials_max": CAP})
    try:
        yield services
    finally:
        services.settings = original


@pytest.fixture(scope="module")
def uncapped(services: Services) -> tuple[list[str], list[str]]:
    """The trial ids of the broad question and of its narrowing, with no cut (the default cap is higher)."""
    first = ask_blocking(services, BROAD)
    second = ask_blocking(services, NARROW, conversation_id=first.conversation_id)
    assert first.trials_total == len(first.trials) > CAP and second.trials_total == len(second.trials) > CAP
    return [t.id for t in first.trials], [t.id for t in second.trials]


def test_an_answer_lists_the_first_trials_and_counts_all(
    uncapped: tuple[list[str], list[str]], capped: Services
) -> None:
    broad, _ = uncapped
    result = ask_blocking(capped, BROAD)
    assert [t.id for t in result.trials] == broad[:CAP] and result.trials_total == len(broad)
    assert result.answer.text.startswith(f"{len(broad)} studies match (the first {CAP} in document order): ")
    assert result.answer.text.count("[") >= CAP  # each listed trial cited


def test_narrowing_a_cut_list_narrows_every_trial_that_matched(
    uncapped: tuple[list[str], list[str]], capped: Services
) -> None:
    broad, narrowed = uncapped
    first = ask_blocking(capped, BROAD)
    second = ask_blocking(capped, NARROW, conversation_id=first.conversation_id)
    assert second.resolution.state is not None and second.resolution.state.move == "narrow"
    assert second.trials_total == len(narrowed) and [t.id for t in second.trials] == narrowed[:CAP]
    assert not set(narrowed) <= set(broad[:CAP])  # some were not shown the turn before
    item = ask_blocking(capped, "Tell me more about the second one", conversation_id=second.conversation_id)
    assert [t.id for t in item.trials] == [narrowed[1]]  # "the second one" of the trials shown


def test_the_api_and_the_page_say_how_many_match(capped: Services, client: TestClient) -> None:
    body = client.post("/api/ask", json={"question": BROAD}).json()
    assert len(body["trials"]) == CAP < body["trials_total"]
    listing = client.get("/api/trials", params={"q": body["resolved_question"]}).json()
    assert listing["count"] == body["trials_total"]
    assert [t["id"] for t in listing["trials"][:CAP]] == [t["id"] for t in body["trials"]]
    page = client.get("/", params={"q": BROAD}).text
    more = re.search(
        r'class="trials-more[^>]*>The first (\d+) of ([\d,]+) matching trials[^<]*<a href="([^"]+)"', page
    )
    assert more and more.group(1) == str(CAP) and more.group(2) == str(body["trials_total"])
    link = urlparse(more.group(3).replace("&amp;", "&"))
    assert link.path == "/trials" and parse_qs(link.query)["q"] == [body["resolved_question"]]
    assert f"{body['trials_total']} trials" in client.get(more.group(3).replace("&amp;", "&")).text
