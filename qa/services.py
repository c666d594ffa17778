"""The long-lived components (model, index, retriever), created once by the app lifespan or the CLI."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from qa.embedding import Embedder
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
        return cls(settings, embedder, index, Retriever(index, embedder.encode, rrf_k=settings.rrf_k))

    def encode_query(self, text: str) -> np.ndarray:
        return self.embedder.encode([text])[0]
