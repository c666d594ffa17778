"""The long-lived components (model, index, retriever, facts, conversations), created once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.answer import QuestionTerms
from qa.conversations import ConversationStore
from qa.embedding import Embedder
from qa.facts.store import FactStore
from qa.index.build import build_index
from qa.index.store import SearchIndex, index_differences
from qa.retrieval import Retriever
from qa.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    embedder: Embedder
    index: SearchIndex
    retriever: Retriever
    terms: QuestionTerms
    conversations: ConversationStore
    facts: Any = None  # the fact store of the index (trials, drugs), when the index has one

    @classmethod
    def start(
        cls, settings: Settings, *, embedder: Embedder | None = None, build_if_needed: bool = False
    ) -> Services:
        embedder = embedder or Embedder(settings.model, threads=settings.torch_threads)
        if build_if_needed:
            diffs = index_differences(settings)
            if diffs:
                log.info("building the index: %s", "; ".join(diffs))
                build_index(settings, embedder)
        index = SearchIndex.load(settings)
        conversations = ConversationStore(
            Path(settings.index_dir) / "conversations.sqlite3",
            max_conversations=settings.conversation_max,
            ttl_hours=settings.conversation_ttl_hours,
        )
        return cls(
            settings,
            embedder,
            index,
            Retriever(index, embedder.encode, rrf_k=settings.rrf_k),
            QuestionTerms(index),
            conversations,
            FactStore.for_index(index.path, list(index.documents.values()), index.passages),
        )

    def close(self) -> None:
        self.conversations.close()

    def encode_query(self, text: str) -> np.ndarray:
        return self.embedder.encode([text])[0]
