"""Conversations in PostgreSQL (``QA_DATABASE_URL``), shared by every replica that serves the same index.

Each append is committed before it returns, so a follow-up that a load balancer sends to another replica sees
the turn. Ages are measured on the database's clock, so replicas on machines whose clocks differ agree on
which conversations are the most recently used and which have expired.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool  # its errors (timeout, closed) are psycopg.Errors

from qa.conversations.base import PRUNE_EVERY, ConversationStore, Turn, unknown_conversation
from qa.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

NOW = "extract(epoch from clock_timestamp())"  # seconds, on the database's clock
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS qa_conversations "
    "(id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS qa_conversations_updated ON qa_conversations (updated)",
    "CREATE TABLE IF NOT EXISTS qa_turns ("
    " conversation_id TEXT NOT NULL REFERENCES qa_conversations(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL, data JSONB NOT NULL, PRIMARY KEY (conversation_id, seq))",
)
# Advisory-lock keys: replicas starting together create the schema one at a time (concurrent CREATE ... IF NOT
# EXISTS can still collide in PostgreSQL's catalogue), and one replica at a time prunes.
SCHEMA_LOCK = 0x7161_0001
PRUNE_LOCK = 0x7161_0002
POOL_SIZE = 4


def describe(params: dict[str, Any]) -> str:
    """user@host:port/dbname of a connection, without its password (for messages and stats)."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{params.get('user', '')}@{host}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class PostgresConversationStore(ConversationStore):
    """Turns in PostgreSQL through a small connection pool; the schema is created when missing."""

    shared = True

    def __init__(
        self, url: str, *, max_conversations: int = 1000, ttl_hours: float = 72.0, timeout: float = 5.0
    ) -> None:
        """``timeout``: seconds to wait for the database, to connect or for a free pooled connection (a
        database that is down is an error after that, not a hang)."""
        super().__init__(max_conversations=max_conversations, ttl_hours=ttl_hours)
        try:
            params: dict[str, Any] = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"QA_DATABASE_URL is not a PostgreSQL connection URL ({_one_line(exc)}); "
                "expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME"
            ) from None
        self.where = describe(params)
        params.setdefault("connect_timeout", max(2, math.ceil(timeout)))  # libpq's least is 2 s
        params.setdefault("application_name", "qa")
        conninfo = make_conninfo(**params)
        try:
            with psycopg.connect(conninfo) as conn:  # committed when the block ends
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                for statement in SCHEMA:
                    conn.execute(statement)
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            check=ConnectionPool.check_connection,  # a connection the server dropped is replaced, not used
            timeout=timeout,
            name="qa-conversations",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:
            self._pool.close()
            raise self._unavailable(exc) from None
        self._closed = False
        self._appends = 0
        self._prune(wait=True)

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        return DatabaseUnavailable(f"cannot use the conversation database {self.where}: {_one_line(exc)}")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()

    def history(self, conversation_id: str) -> list[Turn]:
        try:
            with self._pool.connection() as conn:
                rows = conn.execute(
                    "SELECT t.data FROM qa_turns t JOIN qa_conversations c ON c.id = t.conversation_id "
                    f"WHERE c.id = %s AND c.updated >= {NOW} - %s ORDER BY t.seq",
                    (conversation_id, self.ttl_seconds),
                ).fetchall()
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None
        if not rows:  # a stored conversation has at least one turn
            raise unknown_conversation(conversation_id)
        return [Turn.from_dict(row[0]) for row in rows]

    def append(self, conversation_id: str, turn: Turn) -> None:
        """Commit ``turn``; a database that fails is logged, and the answer goes out all the same."""
        if self._closed:
            raise RuntimeError("the conversation store is closed")
        try:
            with self._pool.connection() as conn:
                # The upsert locks the conversation's row until the commit, so two replicas appending to one
                # conversation number their turns one after the other.
                conn.execute(
                    f"INSERT INTO qa_conversations (id, created, updated) VALUES (%s, {NOW}, {NOW}) "
                    "ON CONFLICT (id) DO UPDATE SET updated = excluded.updated",
                    (conversation_id,),
                )
                conn.execute(
                    "INSERT INTO qa_turns (conversation_id, seq, data) "
                    "SELECT %s, COALESCE(MAX(seq), 0) + 1, %s FROM qa_turns WHERE conversation_id = %s",
                    (conversation_id, Jsonb(asdict(turn)), conversation_id),
                )
        except psycopg.Error:
            log.exception("could not save a conversation turn to %s", self.where)
            return
        self._appends += 1
        if self._appends % PRUNE_EVERY == 0:  # bounded within PRUNE_EVERY (per replica) of the limits
            self._prune(wait=False)

    def flush(self, timeout: float = 30.0) -> None:
        """Nothing to wait for: every append is committed before it returns."""

    def _prune(self, *, wait: bool) -> None:
        """Drop the expired conversations and those past ``max_conversations`` (oldest use first). With
        ``wait`` off, a replica that finds another one pruning leaves it to that one."""
        lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        try:
            with self._pool.connection() as conn:
                held = conn.execute(f"SELECT {lock}(%s)", (PRUNE_LOCK,)).fetchone()
                if not wait and not (held and held[0]):
                    return
                conn.execute(f"DELETE FROM qa_conversations WHERE updated < {NOW} - %s", (self.ttl_seconds,))
                # A threshold rather than a list of ids: a conversation used again while this runs is
                # checked against it with its new time, and kept.
                conn.execute(
                    "DELETE FROM qa_conversations WHERE updated <= "
                    "(SELECT updated FROM qa_conversations ORDER BY updated DESC OFFSET %s LIMIT 1)",
                    (self.max_conversations,),
                )
        except psycopg.Error:
            log.exception("could not prune the conversations in %s", self.where)

    def count(self) -> int:
        self._prune(wait=True)
        try:
            with self._pool.connection() as conn:
                row = conn.execute("SELECT COUNT(*) FROM qa_conversations").fetchone()
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None
        return int(row[0]) if row else 0

    def stats(self) -> dict[str, Any]:
        return {"conversations": self.count(), "database": self.where}
