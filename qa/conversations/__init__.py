"""Conversations: turns kept per conversation, bounded by count and age, surviving restarts.

In SQLite beside the index by default (one serving process's), or in PostgreSQL when ``QA_DATABASE_URL`` is
set, shared by replicas behind a load balancer. psycopg is imported only then.
"""

from __future__ import annotations

from pathlib import Path

from qa.conversations.base import ConversationStore, Turn
from qa.conversations.sqlite import SQLiteConversationStore
from qa.settings import Settings

__all__ = ["ConversationStore", "SQLiteConversationStore", "Turn", "open_store"]


def open_store(settings: Settings) -> ConversationStore:
    """The store these settings name (DatabaseUnavailable when the database cannot be used)."""
    most, hours = settings.conversation_max, settings.conversation_ttl_hours
    if settings.database_url:
        from qa.conversations.postgres import PostgresConversationStore

        return PostgresConversationStore(settings.database_url, max_conversations=most, ttl_hours=hours)
    path = Path(settings.index_dir) / "conversations.sqlite3"
    return SQLiteConversationStore(path, max_conversations=most, ttl_hours=hours)
