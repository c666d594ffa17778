"""Conversations: turns kept in SQLite beside the index, bounded by count and age, surviving restarts."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import NotFound

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (conversation_id, seq)
);
"""


PRUNE_EVERY = 32  # pruning sorts every conversation: do it every so many appends, not on each


@dataclass
class Turn:
    question: str
    resolved: str  # the question as understood after reading it against the previous turn
    entities: dict[str, list[str]] = field(default_factory=dict)  # type -> canonical names
    trial_ids: list[str] = field(default_factory=list)
    about_trials: bool = False


class ConversationStore:
    def __init__(self, path: Path, *, max_conversations: int = 1000, ttl_hours: float = 72.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_conversations = max_conversations
        self.ttl_seconds = ttl_hours * 3600
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._appends = 0
        with self._lock:
            self._prune(time.time())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def history(self, conversation_id: str) -> list[Turn]:
        """Turns of a live conversation, oldest first; NotFound when unknown or expired."""
        with self._lock:
            row = self._db.execute(
                "SELECT updated FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if row is None or time.time() - row[0] > self.ttl_seconds:
                raise NotFound(
                    f"conversation '{conversation_id}' is unknown or expired; omit conversation_id to start a new one"
                )
            rows = self._db.execute(
                "SELECT data FROM turns WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
            ).fetchall()
        return [Turn(**json.loads(r[0])) for r in rows]

    def append(self, conversation_id: str, turn: Turn) -> None:
        now = time.time()
        data = json.dumps(asdict(turn))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO conversations (id, created, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET updated = excluded.updated",
                    (conversation_id, now, now),
                )
                seq = self._db.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation_id = ?",
                    (conversation_id,),
                ).fetchone()[0]
                self._db.execute("INSERT INTO turns VALUES (?, ?, ?)", (conversation_id, seq, data))
                self._appends += 1
                if self._appends % PRUNE_EVERY == 0:  # bounded within PRUNE_EVERY of the limits
                    self._prune(now)
                self._db.execute("COMMIT")
            except Exception:
                self._db.execute("ROLLBACK")
                raise

    def _prune(self, now: float) -> None:
        self._db.execute("DELETE FROM conversations WHERE updated < ?", (now - self.ttl_seconds,))
        self._db.execute(
            "DELETE FROM conversations WHERE id NOT IN (SELECT id FROM conversations ORDER BY updated DESC LIMIT ?)",
            (self.max_conversations,),
        )

    def count(self) -> int:
        with self._lock:
            self._prune(time.time())
            return int(self._db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        return {"conversations": self.count(), "path": str(self.path)}
