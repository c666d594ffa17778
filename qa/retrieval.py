"""Hybrid retrieval: dense (FAISS) and keyword (BM25) rankings combined by reciprocal rank fusion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qa.chunking import Passage
from qa.index.store import SearchIndex

Encoder = Callable[[list[str]], np.ndarray]
Mode = str  # "hybrid" | "dense" | "bm25"


@dataclass
class Hit:
    passage: Passage
    score: float  # fused score (RRF), comparable within one query
    dense: float  # cosine similarity of the passage to the question
    bm25: float
    rank: int = 0
    merged: list[str] = field(default_factory=list)  # ids of overlapping passages folded into this hit


def rrf(rankings: list[list[int]], k: int) -> dict[int, float]:
    """Reciprocal rank fusion: each ranking adds 1 / (k + rank) for every row it lists."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank)
    return fused


class Retriever:
    def __init__(self, index: SearchIndex, encode: Encoder, *, rrf_k: int = 60) -> None:
        self.index = index
        self.encode = encode
        self.rrf_k = rrf_k

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        mode: Mode = "hybrid",
        query_vector: np.ndarray | None = None,
        expansions: list[str] | None = None,
    ) -> list[Hit]:
        """Top ``k`` passages for ``query``; ``expansions`` are extra terms for the keyword side."""
        n = len(self.index.passages)
        if n == 0 or not query.strip():
            return []
        depth = min(n, max(50, 5 * k))
        qvec = query_vector if query_vector is not None else self.encode([query])[0]
        dense_all = self.index.dense.search(qvec[None, :], depth)
        dense_rows = [int(r) for r in dense_all[1][0] if r >= 0]
        dense_score = {
            int(r): float(s) for s, r in zip(dense_all[0][0], dense_all[1][0], strict=True) if r >= 0
        }
        keyword_query = " ".join([query, *(expansions or [])])
        bm25_all = self.index.keyword.scores(keyword_query)
        bm25_rows = [int(r) for r in np.argsort(-bm25_all, kind="stable")[:depth] if bm25_all[r] > 0]

        if mode == "dense":
            fused = {r: dense_score[r] for r in dense_rows}
        elif mode == "bm25":
            fused = {r: float(bm25_all[r]) for r in bm25_rows}
        else:
            fused = rrf([dense_rows, bm25_rows], self.rrf_k)
        ordered = sorted(fused, key=lambda r: -fused[r])
        hits: list[Hit] = []
        for row in ordered:
            p = self.index.passages[row]
            dense = dense_score.get(row)
            if dense is None:
                dense = float(self.index.dense_vector(row) @ qvec)
            hit = Hit(p, fused[row], dense, float(bm25_all[row]))
            host = next((h for h in hits if _overlaps(h.passage, p)), None)
            if host is not None:
                host.merged.append(p.id)
                continue
            hit.rank = len(hits) + 1
            hits.append(hit)
            if len(hits) >= k:
                break
        return hits


def _overlaps(a: Passage, b: Passage) -> bool:
    """Same document and section, and the ranges overlap or touch (overlapping chunks of one text)."""
    return a.doc_id == b.doc_id and a.section_id == b.section_id and a.start <= b.end and b.start <= a.end
