"""Follow-ups read against the previous turn; conversations are bounded and survive a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qa.conversations import ConversationStore, Turn
from qa.errors import NotFound
from qa.followup import resolve

HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"


def test_what_about_swaps_the_entity_of_the_same_kind(services) -> None:  # type: ignore[no-untyped-def]
    vocab = services.facts.vocab if services.facts else None
    r = resolve("What about nivolumab?", HEADLINE, vocab)
    assert r.kind == "ellipsis"
    assert "nivolumab" in r.resolved and "pembrolizumab" not in r.resolved and "TLR9" in r.resolved
    r = resolve("And in melanoma?", "Which trials evaluate TIGIT antibodies in first-line NSCLC?", vocab)
    assert "melanoma" in r.resolved and "NSCLC" not in r.resolved and "TIGIT" in r.resolved


def test_reference_narrows_the_previous_question(services) -> None:  # type: ignore[no-untyped-def]
    vocab = services.facts.vocab if services.facts else None
    r = resolve("Which of them are in melanoma?", HEADLINE, vocab)
    assert r.kind == "reference" and "pembrolizumab" in r.resolved and "melanoma" in r.resolved
    assert resolve("What is sitravatinib?", HEADLINE, vocab).resolved == "What is sitravatinib?"


def test_follow_up_through_the_api(client) -> None:  # type: ignore[no-untyped-def]
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


def test_conversations_survive_a_restart_and_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = ConversationStore(path, max_conversations=3, ttl_hours=1)
    ids = [store.new_id() for _ in range(5)]
    for cid in ids:
        store.append(cid, Turn(question="q", resolved="q"))
        time.sleep(0.01)
    store.close()
    reopened = ConversationStore(path, max_conversations=3, ttl_hours=1)
    assert reopened.count() == 3
    assert reopened.history(ids[-1])[0].question == "q"
    with pytest.raises(NotFound):
        reopened.history(ids[0])  # the oldest were dropped


def test_conversations_expire(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3", ttl_hours=0.5 / 3600)
    cid = store.new_id()
    store.append(cid, Turn(question="q", resolved="q"))
    time.sleep(0.6)
    with pytest.raises(NotFound, match="expired"):
        store.history(cid)


def test_a_turn_is_readable_at_once_and_written_behind(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.new_id()
    for i in range(50):  # each follow-up sees every turn before it, written to disk or still queued
        store.append(cid, Turn(question=f"q{i}", resolved=f"q{i}"))
        assert [t.question for t in store.history(cid)] == [f"q{j}" for j in range(i + 1)]
    store.flush()
    assert store._pending == {}  # all written
    store.close()
    reopened = ConversationStore(tmp_path / "c.sqlite3")
    assert len(reopened.history(cid)) == 50
    reopened.close()
