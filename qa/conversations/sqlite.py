"""Conversations in SQLite beside the index (the embedded default): one process's, written behind the
requests by one thread."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qa.conversations.base import PRUNE_EVERY, ConversationStore, Turn, unknown_conversation

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (conversation_id, seq)
);
"""


WRITE_BATCH = 256  # turns written in one transaction at most
log = logging.getLogger(__name__)


class SQLiteConversationStore(ConversationStore):
    """Turns in SQLite, written behind the requests by one thread.

    ``append`` only queues the turn (a request never waits on a commit, nor on an occasional WAL
    checkpoint); until it is written the turn is kept in memory and ``history`` reads it from there, so a
    follow-up always sees the turn before it. ``close`` writes whatever is still queued.
    """

    def __init__(self, path: Path, *, max_conversations: int = 1000, ttl_hours: float = 72.0) -> None:
        super().__init__(max_conversations=max_conversations, ttl_hours=ttl_hours)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()  # the database, and moving turns from pending to written
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._appends = 0
        with self._lock:
            self._prune(time.time())
        self._pending: dict[str, list[Turn]] = {}  # appended, not yet written, oldest first
        self._pending_lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[str, Turn, float] | threading.Event | None] = queue.SimpleQueue()
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="qa-conversations", daemon=True)
        self._writer.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        with self._lock:
            self._db.close()

    def history(self, conversation_id: str) -> list[Turn]:
        """Turns of a live conversation, oldest first; NotFound when unknown or expired."""
        with self._lock:
            row = self._db.execute(
                "SELECT updated FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            rows = self._db.execute(
                "SELECT data FROM turns WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
            ).fetchall()
            with self._pending_lock:
                pending = list(self._pending.get(conversation_id, ()))
        if not pending and (row is None or time.time() - row[0] > self.ttl_seconds):
            raise unknown_conversation(conversation_id)
        return [Turn.from_json(r[0]) for r in rows] + pending

    def append(self, conversation_id: str, turn: Turn) -> None:
        """Add ``turn`` to the conversation (created when new); written to disk shortly after."""
        if self._closed:
            raise RuntimeError("the conversation store is closed")
        with self._pending_lock:
            self._pending.setdefault(conversation_id, []).append(turn)
        self._queue.put((conversation_id, turn, time.time()))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every turn appended so far is written."""
        if self._closed:
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[tuple[str, Turn, float]] = []
            markers: list[threading.Event] = []
            stop = False
            while True:  # everything queued meanwhile goes into the same transaction
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= WRITE_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for marker in markers:
                marker.set()
            if stop:
                return

    def _write(self, batch: list[tuple[str, Turn, float]]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for conversation_id, turn, now in batch:
                    self._insert(conversation_id, turn, now)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                log.exception("could not save %d conversation turns to %s", len(batch), self.path)
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            finally:  # written or not, memory stays bounded: the turns leave the pending list
                with self._pending_lock:
                    for conversation_id, turn, _ in batch:
                        turns = self._pending.get(conversation_id, [])
                        if turn in turns:
                            turns.remove(turn)
                        if not turns:
                            self._pending.pop(conversation_id, None)

    def _insert(self, conversation_id: str, turn: Turn, now: float) -> None:
        self._db.execute(
            "INSERT INTO conversations (id, created, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET updated = excluded.updated",
            (conversation_id, now, now),
        )
        seq = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation_id = ?",
            (conversation_id,),
        ).fetchone()[0]
        self._db.execute(
            "INSERT INTO turns VALUES (?, ?, ?)", (conversation_id, seq, json.dumps(asdict(turn)))
        )
        self._appends += 1
        if self._appends % PRUNE_EVERY == 0:  # bounded within PRUNE_EVERY of the limits
            self._prune(now)

    def _prune(self, now: float) -> None:
        self._db.execute("DELETE FROM conversations WHERE updated < ?", (now - self.ttl_seconds,))
        self._db.execute(
            "DELETE FROM conversations WHERE id NOT IN (SELECT id FROM conversations ORDER BY updated DESC LIMIT ?)",
            (self.max_conversations,),
        )

    def count(self) -> int:
        self.flush()
        with self._lock:
            self._prune(time.time())
            return int(self._db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        return {"conversations": self.count(), "path": str(self.path)}
