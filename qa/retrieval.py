"""Hybrid retrieval: dense (FAISS) and keyword (BM25) scores fused by one global rule, overlaps merged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np

from qa.chunking import Passage, passage_id
from qa.index.dense import DenseIndex
from qa.index.keyword import KeywordIndex

Encoder = Callable[[list[str]], np.ndarray]
Mode = str  # "hybrid" | "dense" | "bm25"
Fusion = Literal["rrf", "minmax", "zscore"]


class PassageIndex(Protocol):
    """What retrieval needs from an index: the passages (row order) and the two searchable indexes."""

    passages: list[Passage]
    dense: DenseIndex
    keyword: KeywordIndex

    def dense_vector(self, row: int) -> np.ndarray: ...


@dataclass
class Hit:
    passage: Passage
    score: float  # fused score, comparable within one query
    dense: float  # cosine similarity of the passage to the question
    bm25: float
    rank: int = 0
    merged: list[str] = field(default_factory=list)  # ids of indexed passages merged into ``passage``


def rrf(rankings: list[list[int]], k: int) -> dict[int, float]:
    """Reciprocal rank fusion: each ranking adds 1 / (k + rank) for every row it lists."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank)
    return fused


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    lo, hi = min(scores.values()), max(scores.values())
    return {r: (s - lo) / (hi - lo or 1.0) for r, s in scores.items()}


def _zscore(scores: dict[int, float]) -> dict[int, float]:
    values = np.fromiter(scores.values(), dtype=np.float64)
    mean, std = float(values.mean()), float(values.std()) or 1.0
    return {r: (s - mean) / std for r, s in scores.items()}


def score_fusion(
    dense: dict[int, float], bm25: dict[int, float], alpha: float, *, scale: str = "minmax"
) -> dict[int, float]:
    """``alpha`` * dense + (1 - alpha) * BM25, each scaled over the same candidate rows (min-max or z-score)."""
    norm = _zscore if scale == "zscore" else _minmax
    d, b = norm(dense), norm(bm25)
    return {r: alpha * d[r] + (1.0 - alpha) * b[r] for r in dense}


class Retriever:
    def __init__(
        self,
        index: PassageIndex,
        encode: Encoder,
        *,
        rrf_k: int = 60,
        fusion: Fusion = "zscore",
        alpha: float = 0.6,
        depth: int = 100,
    ) -> None:
        """``fusion``, ``alpha`` and ``depth`` were chosen on SciFact train claims and the dev questions
        (z-score fusion at alpha 0.6 beat RRF by about 2.5 nDCG@10 points there); see qa/evaluation.py."""
        self.index = index
        self.encode = encode
        self.rrf_k = rrf_k
        self.fusion = fusion
        self.alpha = alpha  # weight of the dense side in min-max fusion; one global value
        self.depth = depth  # candidates taken from each side before fusing

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
        depth = min(n, max(self.depth, 5 * k))
        qvec = query_vector if query_vector is not None else self.encode([query])[0]
        dense_all = self.index.dense.search(qvec[None, :], depth)
        dense_score = {
            int(r): float(s) for s, r in zip(dense_all[0][0], dense_all[1][0], strict=True) if r >= 0
        }
        dense_rows = list(dense_score)
        keyword_query = " ".join([query, *(expansions or [])])
        bm25_all = self.index.keyword.scores(keyword_query)
        bm25_rows = [int(r) for r in np.argsort(-bm25_all, kind="stable")[:depth] if bm25_all[r] > 0]

        if mode == "dense":
            fused = dict(dense_score)
        elif mode == "bm25":
            fused = {r: float(bm25_all[r]) for r in bm25_rows}
        elif self.fusion in ("minmax", "zscore"):
            for r in bm25_rows:  # both scores for every candidate, so neither side is missing
                if r not in dense_score:
                    dense_score[r] = float(self.index.dense_vector(r) @ qvec)
            bm25 = {r: float(bm25_all[r]) for r in dense_score}
            fused = score_fusion(dense_score, bm25, self.alpha, scale=self.fusion)
        else:
            fused = rrf([dense_rows, bm25_rows], self.rrf_k)
        return self._hits(fused, dense_score, bm25_all, qvec, k)

    def _hits(
        self,
        fused: dict[int, float],
        dense_score: dict[int, float],
        bm25_all: np.ndarray,
        qvec: np.ndarray,
        k: int,
    ) -> list[Hit]:
        """Best-first hits; a passage overlapping better ones is merged into them (the hit spans all)."""
        hits: list[Hit] = []
        own: dict[int, str] = {}  # id(hit) -> the indexed passage it started from
        for row in sorted(fused, key=lambda r: -fused[r]):
            p = self.index.passages[row]
            hosts = [h for h in hits if _overlaps(h.passage, p)]
            if hosts:
                host = hosts[0]
                host.passage = merge_passages(host.passage, p)
                host.merged.append(p.id)
                for other in hosts[1:]:  # p bridges two hits: they become one
                    host.passage = merge_passages(host.passage, other.passage)
                    host.merged.extend([own[id(other)], *other.merged])
                    hits.remove(other)
                continue
            dense = dense_score.get(row)
            if dense is None:
                dense = float(self.index.dense_vector(row) @ qvec)
            hit = Hit(p, fused[row], dense, float(bm25_all[row]))
            own[id(hit)] = p.id
            hits.append(hit)
            if len(hits) >= k:
                break
        for rank, hit in enumerate(hits, start=1):
            hit.rank = rank
        return hits


def merge_passages(a: Passage, b: Passage) -> Passage:
    """One passage spanning two overlapping passages of a section (both texts are slices of one document).

    Its id follows the passage id scheme but is not in the index when it spans several indexed passages;
    ``Hit.merged`` lists the indexed ones folded in, and ``sentences`` keeps every sentence's offsets.
    """
    first, last = (a, b) if (a.start, -a.end) <= (b.start, -b.end) else (b, a)
    if last.end <= first.end:
        return first
    text = first.text + last.text[first.end - last.start :]
    return replace(
        first,
        id=passage_id(first.doc_id, first.start, last.end),
        end=last.end,
        text=text,
        refs=sorted(set(first.refs) | set(last.refs)),
        sentences=sorted(set(first.sentences) | set(last.sentences)),
        tokens=0,  # not counted: a merged span may exceed the model's window
    )


def _overlaps(a: Passage, b: Passage) -> bool:
    """Same document and section, and the ranges overlap or touch (overlapping chunks of one text)."""
    return a.doc_id == b.doc_id and a.section_id == b.section_id and a.start <= b.end and b.start <= a.end
