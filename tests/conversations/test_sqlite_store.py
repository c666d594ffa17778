"""The SQLite store's own ways (the contract both stores keep is in test_store_contract.py): turns written
behind the requests, readable at once, everything queued written on close, the file named in its stats."""

from __future__ import annotations

from pathlib import Path

from qa.conversations import SQLiteConversationStore, Turn


def _turn(question: str) -> Turn:
    return Turn(question=question, resolved=question)


def test_a_turn_is_readable_at_once_and_written_behind(tmp_path: Path) -> None:
    store = SQLiteConversationStore(tmp_path / "c.sqlite3")
    assert not store.shared  # one process's: the pipeline may record a turn after the answer leaves
    cid = store.new_id()
    for i in range(50):  # each follow-up sees every turn before it, written to disk or still queued
        store.append(cid, _turn(f"q{i}"))
        assert [t.question for t in store.history(cid)] == [f"q{j}" for j in range(i + 1)]
    store.flush()
    assert store._pending == {}  # all written
    store.close()
    reopened = SQLiteConversationStore(tmp_path / "c.sqlite3")
    assert len(reopened.history(cid)) == 50
    reopened.close()


def test_close_writes_more_than_one_batch_still_queued(tmp_path: Path) -> None:
    store = SQLiteConversationStore(tmp_path / "c.sqlite3")
    cid = store.new_id()
    for i in range(300):  # more than one write batch still queued when it closes
        store.append(cid, _turn(f"q{i}"))
    store.close()
    reopened = SQLiteConversationStore(tmp_path / "c.sqlite3")
    assert [t.question for t in reopened.history(cid)] == [f"q{i}" for i in range(300)]
    reopened.close()


def test_the_stats_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = SQLiteConversationStore(path)
    store.append(store.new_id(), _turn("q"))
    assert store.stats() == {"conversations": 1, "path": str(path)}
    store.close()
