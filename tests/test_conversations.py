"""The conversation store: turns appended and read back in order, kept apart per conversation, bounded by
count and age, surviving a restart, written behind the requests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.conversations import ConversationStore, Turn
from qa.errors import NotFound


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    s = ConversationStore(tmp_path / "conversations.sqlite3")
    yield s
    s.close()


def _turn(question: str) -> Turn:
    return Turn(question=question, resolved=question)


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


def test_an_unknown_conversation_is_not_found_and_says_how_to_start_one(store: ConversationStore) -> None:
    with pytest.raises(NotFound, match="omit conversation_id") as info:
        store.history(store.new_id())
    assert "unknown or expired" in info.value.message


def test_conversations_are_kept_apart_in_order_and_continue_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = ConversationStore(path)
    a, b = store.new_id(), store.new_id()
    assert a != b and len(a) == 32
    for i in range(3):
        store.append(a, _turn(f"a{i}"))
        store.append(b, _turn(f"b{i}"))
    store.close()
    reopened = ConversationStore(path)
    reopened.append(a, _turn("a3"))  # numbered after the turns already on disk
    reopened.flush()
    assert [t.question for t in reopened.history(a)] == ["a0", "a1", "a2", "a3"]
    assert [t.question for t in reopened.history(b)] == ["b0", "b1", "b2"]
    assert reopened.stats() == {"conversations": 2, "path": str(path)}
    reopened.close()


def test_every_field_of_a_turn_survives_the_round_trip(tmp_path: Path) -> None:
    turn = Turn(
        question="Which of them are phase 3?",
        resolved="Which trials of pembrolizumab in melanoma are phase 3?",
        entities={"drug": ["pembrolizumab"], "disease": ["melanoma"]},
        trial_ids=["keynote-006", "keynote-002"],
        about_trials=True,
        state={"move": "narrow", "filters": {"phases": [3]}, "scope": ["keynote-006"]},
    )
    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.new_id()
    store.append(cid, turn)
    store.close()
    reopened = ConversationStore(tmp_path / "c.sqlite3")
    assert reopened.history(cid) == [turn]
    reopened.close()


def test_a_stored_turn_ignores_keys_it_does_not_know_and_defaults_the_missing_ones() -> None:
    turn = Turn.from_json(json.dumps({"question": "q", "resolved": "r", "added_later": [1, 2]}))
    assert turn == Turn(question="q", resolved="r")
    assert turn.entities == {} and turn.trial_ids == [] and not turn.about_trials and turn.state is None


def test_the_most_recently_used_conversations_are_the_ones_kept(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3", max_conversations=2)
    old, middle, new = store.new_id(), store.new_id(), store.new_id()
    for cid in (old, middle):
        store.append(cid, _turn("q"))
        store.flush()
        time.sleep(0.01)
    store.append(old, _turn("again"))  # a follow-up makes the oldest conversation the freshest
    store.flush()
    time.sleep(0.01)
    store.append(new, _turn("q"))
    assert store.count() == 2
    assert [t.question for t in store.history(old)] == ["q", "again"]
    store.history(new)
    with pytest.raises(NotFound):
        store.history(middle)
    store.close()


def test_a_closed_store_refuses_appends_but_keeps_what_it_was_given(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.new_id()
    for i in range(300):  # more than one write batch still queued when it closes
        store.append(cid, _turn(f"q{i}"))
    store.close()
    store.close()  # a second close is harmless, and so is a flush
    store.flush()
    with pytest.raises(RuntimeError, match="closed"):
        store.append(cid, _turn("late"))
    reopened = ConversationStore(tmp_path / "c.sqlite3")
    assert [t.question for t in reopened.history(cid)] == [f"q{i}" for i in range(300)]
    reopened.close()
