"""Follow-ups read against the previous turn: through the pipeline, the API and the stored state."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from conftest import ask_blocking as ask
from fastapi.testclient import TestClient

from qa.conversations import SQLiteConversationStore, Turn
from qa.followup import ConversationState, read_turn, resolve, state_of
from qa.services import Services

HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"
CONVERSATIONS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "data" / "followups.jsonl").read_text().splitlines()
]


def test_what_about_swaps_the_entity_of_the_same_kind(services: Services) -> None:
    vocab = services.facts
    r = resolve("What about nivolumab?", HEADLINE, vocab)
    assert r.kind == "replace"
    assert "nivolumab" in r.resolved and "pembrolizumab" not in r.resolved and "TLR9" in r.resolved
    r = resolve("And in melanoma?", "Which trials evaluate TIGIT antibodies in first-line NSCLC?", vocab)
    assert "melanoma" in r.resolved and "NSCLC" not in r.resolved and "TIGIT" in r.resolved


def test_reference_narrows_the_previous_question(services: Services) -> None:
    vocab = services.facts
    first = read_turn(HEADLINE, None, vocab)
    assert first.state is not None
    first.state.trial_ids = ["000_d6059957f8831505:32256", "NCT02680184"]
    r = read_turn("Which of them are in melanoma?", first.state, vocab)
    assert r.kind == "narrow" and "pembrolizumab" in r.resolved and "melanoma" in r.resolved
    assert r.state is not None and r.state.scope == first.state.trial_ids
    assert resolve("What is sitravatinib?", HEADLINE, vocab).resolved == "What is sitravatinib?"


@pytest.mark.parametrize(
    "follow_up", ["Only the phase 2 ones", "just the phase 2 trials", "phase 2 only?", "And only phase 2"]
)
def test_only_restricts_the_previous_list(services: Services, follow_up: str) -> None:
    first = ask(services, "Which trials use pembrolizumab?")
    second = ask(services, follow_up, conversation_id=first.conversation_id)
    assert second.resolution.kind == "narrow"
    assert second.resolution.resolved == "Which trials of pembrolizumab are phase 2?"
    assert second.trials and {t.id for t in second.trials} <= {t.id for t in first.trials}
    assert all("2" in (t.phase or "") for t in second.trials)


def test_follow_up_through_the_api(client: TestClient) -> None:
    first = client.post("/api/ask", json={"question": HEADLINE}).json()
    second = client.post(
        "/api/ask", json={"question": "What about nivolumab?", "conversation_id": first["conversation_id"]}
    ).json()
    assert second["conversation_id"] == first["conversation_id"]
    assert "nivolumab" in second["resolved_question"] and "pembrolizumab" not in second["resolved_question"]
    third = client.post(
        "/api/ask",
        json={"question": "Which of them are in melanoma?", "conversation_id": first["conversation_id"]},
    ).json()
    assert "melanoma" in third["resolved_question"]
    if first["trials"]:
        assert {t["id"] for t in third["trials"]} <= {t["id"] for t in second["trials"]} | {
            t["id"] for t in first["trials"]
        }


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=[c["id"] for c in CONVERSATIONS])
def test_conversations_through_ask(services: Services, conversation: dict[str, Any]) -> None:
    """Each conversation of tests/data/followups.jsonl asked in turn; the last turn is checked."""
    conversation_id = None
    for question in conversation["turns"]:
        result = ask(services, question, conversation_id=conversation_id)
        conversation_id = result.conversation_id
    resolved = result.resolution.resolved
    assert result.resolution.kind == conversation["move"], resolved
    for wanted in conversation.get("resolved_has", []):
        assert wanted.lower() in resolved.lower(), resolved
    for unwanted in conversation.get("resolved_lacks", []):
        assert unwanted.lower() not in resolved.lower(), resolved
    assert (
        resolved[-1] in "?."
        and "  " not in resolved
        and ":" not in resolved[:-1]
        or len(conversation["turns"]) == 1
    )
    if "trials" in conversation:
        expected = conversation["trials"]
        state = result.resolution.state
        assert state is not None
        if expected is None:
            assert not state.about_trials
        else:
            assert {t.id for t in result.trials} == set(expected), resolved
    if conversation.get("topic_has"):
        topic = result.resolution.state.topic if result.resolution.state else None
        assert topic is not None and conversation["topic_has"] in topic.phrase


def test_the_state_is_stored_and_shown(services: Services) -> None:
    first = ask(services, "Which trials use sitravatinib?")
    second = ask(services, "Which of them are phase 3?", conversation_id=first.conversation_id)
    shown = second.resolution.to_dict()
    assert shown["move"] == "narrow" and shown["filters"]["phases"] == [3]
    assert shown["scope"] == [t.id for t in first.trials]
    services.conversations.flush()
    stored = services.conversations.history(first.conversation_id)[-1]
    state = state_of(stored, services.facts)
    assert state.trial_ids == [t.id for t in second.trials] and state.passage_ids
    assert json.loads(json.dumps(state.to_dict())) == state.to_dict()
    assert ConversationState.from_dict(state.to_dict()) == state


def test_turns_stored_before_states_still_load(tmp_path: Path, services: Services) -> None:
    """A row written by the earlier Turn (no state) loads, and its state is read again from its question."""
    store = SQLiteConversationStore(tmp_path / "c.sqlite3")
    old = {
        "question": "q",
        "resolved": "Which trials use sitravatinib?",
        "entities": {},
        "trial_ids": ["mrtx-500"],
    }
    old["about_trials"] = True
    store._insert("old", Turn(**old), time.time())  # type: ignore[arg-type]
    store._db.execute("UPDATE turns SET data = ? WHERE conversation_id = 'old'", (json.dumps(old),))
    turn = store.history("old")[0]
    assert turn.state is None and asdict(turn)["trial_ids"] == ["mrtx-500"]
    state = state_of(turn, services.facts)
    assert state.about_trials and state.trial_ids == ["mrtx-500"]
    r = read_turn("Which of them are phase 2?", state, services.facts)
    assert r.kind == "narrow" and r.state is not None and r.state.scope == ["mrtx-500"]
    store.close()
