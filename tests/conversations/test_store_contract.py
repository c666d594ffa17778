"""What every conversation store promises, run against SQLite and a real PostgreSQL: turns read back in order
and kept apart per conversation, every field round-tripped, bounded by count (the most recently used kept)
and age, surviving a restart, refusing appends once closed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.conversations import ConversationStore, SQLiteConversationStore, Turn
from qa.errors import NotFound

Opener = Callable[..., ConversationStore]  # opens the same store again: (max_conversations=, ttl_hours=)


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens one store (a SQLite file, or a new database on the session's PostgreSQL) as often as a test
    restarts it; whatever is still open is closed afterwards."""
    if request.param == "sqlite":
        path = tmp_path / "c.sqlite3"

        def make(**limits: Any) -> ConversationStore:
            return SQLiteConversationStore(path, **limits)
    else:
        from qa.conversations.postgres import PostgresConversationStore

        url = request.getfixturevalue("postgres").new_database()

        def make(**limits: Any) -> ConversationStore:
            return PostgresConversationStore(url, **limits)

    opened: list[ConversationStore] = []

    def open_store(**limits: Any) -> ConversationStore:
        opened.append(make(**limits))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def _turn(question: str) -> Turn:
    return Turn(question=question, resolved=question)


def _questions(store: ConversationStore, cid: str) -> list[str]:
    return [t.question for t in store.history(cid)]


def test_every_field_of_a_turn_survives_the_round_trip(opener: Opener) -> None:
    turn = Turn(
        question="Which of them are phase 3?",
        resolved="Which trials of pembrolizumab in melanoma are phase 3?",
        entities={"drug": ["pembrolizumab"], "disease": ["melanoma"]},
        trial_ids=["keynote-006", "keynote-002"],
        about_trials=True,
        state={"move": "narrow", "filters": {"phases": [3]}, "scope": ["keynote-006"], "topic": None},
    )
    store = opener()
    cid = store.new_id()
    store.append(cid, turn)
    store.close()
    reopened = opener()
    assert reopened.history(cid) == [turn]
    assert json.loads(json.dumps(reopened.history(cid)[0].state)) == turn.state


def test_conversations_are_kept_apart_in_order_and_continue_after_a_restart(opener: Opener) -> None:
    store = opener()
    a, b = store.new_id(), store.new_id()
    assert a != b and len(a) == 32
    for i in range(3):
        store.append(a, _turn(f"a{i}"))
        store.append(b, _turn(f"b{i}"))
    assert _questions(store, a) == ["a0", "a1", "a2"]  # readable at once, before any restart
    store.close()
    reopened = opener()
    reopened.append(a, _turn("a3"))  # numbered after the turns already stored
    reopened.flush()
    assert _questions(reopened, a) == ["a0", "a1", "a2", "a3"]
    assert _questions(reopened, b) == ["b0", "b1", "b2"]
    assert reopened.count() == 2 and reopened.stats()["conversations"] == 2


def test_conversations_survive_a_restart_and_are_bounded(opener: Opener) -> None:
    store = opener(max_conversations=3, ttl_hours=1)
    ids = [store.new_id() for _ in range(5)]
    for cid in ids:
        store.append(cid, _turn("q"))
        store.flush()
        time.sleep(0.01)
    store.close()
    reopened = opener(max_conversations=3, ttl_hours=1)
    assert reopened.count() == 3
    for cid in ids[2:]:
        assert _questions(reopened, cid) == ["q"]
    for cid in ids[:2]:
        with pytest.raises(NotFound):
            reopened.history(cid)  # the oldest were dropped


def test_the_most_recently_used_conversations_are_the_ones_kept(opener: Opener) -> None:
    store = opener(max_conversations=2)
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
    assert _questions(store, old) == ["q", "again"]
    assert _questions(store, new) == ["q"]
    with pytest.raises(NotFound):
        store.history(middle)


def test_conversations_expire(opener: Opener) -> None:
    store = opener(ttl_hours=0.5 / 3600)
    cid = store.new_id()
    store.append(cid, _turn("q"))
    store.flush()
    time.sleep(0.6)
    with pytest.raises(NotFound, match="expired"):
        store.history(cid)
    assert store.count() == 0


def test_an_unknown_conversation_is_not_found_and_says_how_to_start_one(opener: Opener) -> None:
    store = opener()
    with pytest.raises(NotFound, match="omit conversation_id") as info:
        store.history(store.new_id())
    assert "unknown or expired" in info.value.message


def test_a_closed_store_refuses_appends_but_keeps_what_it_was_given(opener: Opener) -> None:
    store = opener()
    cid = store.new_id()
    for i in range(40):
        store.append(cid, _turn(f"q{i}"))
    store.close()
    store.close()  # a second close is harmless, and so is a flush
    store.flush()
    with pytest.raises(RuntimeError, match="closed"):
        store.append(cid, _turn("late"))
    assert _questions(opener(), cid) == [f"q{i}" for i in range(40)]


def test_a_stored_turn_ignores_keys_it_does_not_know_and_defaults_the_missing_ones() -> None:
    turn = Turn.from_json(json.dumps({"question": "q", "resolved": "r", "added_later": [1, 2]}))
    assert turn == Turn(question="q", resolved="r")
    assert turn.entities == {} and turn.trial_ids == [] and not turn.about_trials and turn.state is None
