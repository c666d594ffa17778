"""The long-lived components (model, index, retriever, facts, conversations), created once per process."""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.answer import QuestionTerms
from qa.batching import QueryBatcher, query_encoder, serving_threads
from qa.conversations import ConversationStore
from qa.embedding import Embedder
from qa.facts.store import FactStore
from qa.index.build import build_index
from qa.index.store import SearchIndex, index_differences
from qa.retrieval import Retriever
from qa.settings import Settings

log = logging.getLogger(__name__)
GIL_SWITCH_SECONDS = (
    0.0005  # a tenth of the default, so batches reach idle models sooner (see Services.start)
)
QUERY_TIMEOUT_SECONDS = 60.0  # a question's vector that takes longer than this is an error, not a hang


@dataclass
class Services:
    settings: Settings
    embedder: Embedder
    index: SearchIndex
    retriever: Retriever
    terms: QuestionTerms
    conversations: ConversationStore
    facts: FactStore | None = None  # the fact store of the index (trials, drugs), when the index has one
    batcher: QueryBatcher | None = None  # shares forward passes between concurrent questions

    @classmethod
    def start(
        cls, settings: Settings, *, embedder: Embedder | None = None, build_if_needed: bool = False
    ) -> Services:
        own_model = embedder is None
        embedder = embedder or Embedder(settings.model, threads=serving_threads(settings.torch_threads))
        if build_if_needed:
            diffs = index_differences(settings)
            if diffs:
                log.info("building the index: %s", "; ".join(diffs))
                build_index(settings, embedder)
        index = SearchIndex.load(settings)
        # One query at a time needs no OpenMP team: on a machine whose cores the query models keep busy,
        # FAISS's threads would only wait on each other.
        faiss.omp_set_num_threads(1)
        # The batching threads need the GIL for a moment to hand a batch to a model; by default a thread
        # waits up to 5 ms for the event loop to let go of it, leaving the models idle meanwhile.
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        conversations = ConversationStore(
            Path(settings.index_dir) / "conversations.sqlite3",
            max_conversations=settings.conversation_max,
            ttl_hours=settings.conversation_ttl_hours,
        )
        batcher = QueryBatcher(
            query_encoder(settings, embedder) if own_model else embedder.encode,
            max_batch=settings.batch_max,
            wait_ms=settings.batch_wait_ms,
            cache_size=settings.embedding_cache_size,
        )
        return cls._assemble(settings, embedder, index, conversations, batcher)

    @classmethod
    def _assemble(
        cls,
        settings: Settings,
        embedder: Embedder,
        index: SearchIndex,
        conversations: ConversationStore,
        batcher: QueryBatcher | None,
    ) -> Services:
        """The index-bound components (retriever, terms, facts) built around ``index``."""
        return cls(
            settings,
            embedder,
            index,
            Retriever(index, embedder.encode, **settings.retrieval),
            QuestionTerms(index),
            conversations,
            FactStore.for_index(index.path, list(index.documents.values()), index.passages),
            batcher,
        )

    def reloaded(self) -> Services:
        """A new bundle on the index now current on disk, sharing this one's model, batcher and conversations.

        Callers swap the one reference they serve from (``app.state.services``); requests already running
        finish on the bundle they started with, so no request ever sees half of each index.
        """
        index = SearchIndex.load(self.settings)
        return self._assemble(self.settings, self.embedder, index, self.conversations, self.batcher)

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self.conversations.close()

    def busy(self) -> AbstractContextManager[None]:
        """Mark one request in flight for its whole life (the batcher adapts to how many there are)."""
        return self.batcher.busy() if self.batcher is not None else nullcontext()

    async def encode_query(self, text: str) -> np.ndarray:
        """The question's vector: cached, or embedded together with the questions arriving alongside it; the
        forward pass is awaited, never waited on by a thread."""
        async with asyncio.timeout(QUERY_TIMEOUT_SECONDS):
            return await self.encode_query_async(text)

    async def encode_query_async(self, text: str) -> np.ndarray:
        if self.batcher is not None:
            return await self.batcher.encode_async(text)
        return self.embedder.encode([text])[0]
