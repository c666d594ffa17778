"""The long-lived components (model, index, retriever, facts, conversations), created once per process."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.answer import QuestionTerms
from qa.conversations import ConversationStore, open_store
from qa.encoding import Embedder
from qa.encoding.batcher import QueryBatcher
from qa.encoding.tuning import serving_threads
from qa.encoding.worker import query_encoders
from qa.facts.store import FactStore
from qa.index.build import build_index
from qa.index.store import SearchIndex, index_differences
from qa.lexicon import Lexicon
from qa.retrieval import Retriever
from qa.settings import Settings

log = logging.getLogger(__name__)
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
        embedder = embedder or Embedder(
            settings.model,
            threads=serving_threads(settings.torch_threads),
            precision=settings.embed_precision,  # the library's changes; questions go through encode
        )
        from qa.library.changes import recover_if_idle

        recover_if_idle(Path(settings.index_dir))  # a change a killed process left: finished or undone
        if build_if_needed:
            diffs = index_differences(settings)
            if diffs:
                log.info("building the index: %s", "; ".join(diffs))
                build_index(settings, embedder)
        index = SearchIndex.load(settings)
        conversations = open_store(settings)
        batcher = QueryBatcher(
            query_encoders(settings, embedder) if own_model else embedder.encode,
            max_batch=settings.batch_max,
            wait_ms=settings.batch_wait_ms,
            cache_size=settings.embedding_cache_size,
            timeout=QUERY_TIMEOUT_SECONDS,
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
            Retriever(
                index,
                embedder.encode,
                **settings.retrieval,
                lexicon=Lexicon.for_index(index.path, (d.text for d in index.documents.values())),
            ),
            QuestionTerms(index),
            conversations,
            FactStore.for_index(index.path, index.documents.values(), index.passages),
            batcher,
        )

    def reloaded(self, *, check_corpus: bool = True) -> Services:
        """A new bundle on the index now current on disk, sharing this one's model, batcher and conversations.

        Callers swap the one reference they serve from (``app.state.services``); requests already running
        finish on the bundle they started with, so no request ever sees half of each index.
        """
        index = SearchIndex.load(self.settings, check_corpus=check_corpus)
        return self._assemble(self.settings, self.embedder, index, self.conversations, self.batcher)

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self.conversations.close()

    def busy(self) -> AbstractContextManager[None]:
        """Mark one request in flight for its whole life (the batcher adapts to how many there are)."""
        return self.batcher.busy() if self.batcher is not None else nullcontext()

    async def encode_query(self, text: str) -> np.ndarray:
        """The question's vector: cached, or embedded together with the questions arriving alongside it
        (TimeoutError past ``QUERY_TIMEOUT_SECONDS``)."""
        if self.batcher is not None:
            return await self.batcher.encode(text)
        async with asyncio.timeout(QUERY_TIMEOUT_SECONDS):
            vectors = await asyncio.to_thread(self.embedder.encode, [text])
        return vectors[0]
