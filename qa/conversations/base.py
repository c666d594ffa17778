"""What every conversation store keeps and promises: turns in order per conversation, bounded by count and age
(the most recently used kept), surviving a restart."""

from __future__ import annotations

import asyncio
import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from qa.errors import NotFound

PRUNE_EVERY = 32  # pruning sorts every conversation: do it every so many appends, not on each


@dataclass
class Turn:
    question: str
    resolved: str  # the question as understood after reading it against the previous turn
    entities: dict[str, list[str]] = field(default_factory=dict)  # type -> canonical names
    trial_ids: list[str] = field(default_factory=list)
    about_trials: bool = False
    state: dict[str, Any] | None = (
        None  # qa.followup.ConversationState as JSON; absent in turns stored before
    )

    @classmethod
    def from_json(cls, text: str) -> Turn:
        """A stored turn; keys this version does not know are ignored, missing ones take their defaults."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def unknown_conversation(conversation_id: str) -> NotFound:
    return NotFound(
        f"conversation '{conversation_id}' is unknown or expired; omit conversation_id to start a new one"
    )


class ConversationStore(ABC):
    """Turns by conversation. ``shared`` says whether other processes read and write the same turns (then a
    turn must be stored before the answer that made it leaves, since its follow-up may reach another
    replica); a store that is not shared may write behind the requests."""

    shared = False

    def __init__(self, *, max_conversations: int, ttl_hours: float) -> None:
        self.max_conversations = max_conversations
        self.ttl_seconds = ttl_hours * 3600

    def new_id(self) -> str:
        return uuid.uuid4().hex

    @abstractmethod
    def history(self, conversation_id: str) -> list[Turn]:
        """Turns of a live conversation, oldest first; NotFound when unknown or expired."""

    async def history_async(self, conversation_id: str) -> list[Turn]:
        """``history`` from a coroutine: a shared store's database round trip runs on a thread, so a slow
        or unreachable database never holds the event loop (and every other request) while it waits."""
        if self.shared:
            return await asyncio.to_thread(self.history, conversation_id)
        return self.history(conversation_id)

    @abstractmethod
    def append(self, conversation_id: str, turn: Turn) -> None:
        """Add ``turn`` to the conversation (created when new), which becomes the most recently used."""

    @abstractmethod
    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every turn appended so far is written."""

    @abstractmethod
    def count(self) -> int:
        """Live conversations, once the expired and those past ``max_conversations`` are dropped."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """The count and where the turns are kept."""

    @abstractmethod
    def close(self) -> None:
        """Write what is pending and release the database; a second close is harmless."""
