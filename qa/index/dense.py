"""Dense vector index over normalized embeddings: exact (flat) for small corpora, HNSW or IVF for large."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

Kind = Literal["flat", "hnsw", "ivf"]
# An approximate index searched within a set of rows misses some of the set's best rows (a graph walk or the
# probed lists find too few of them), so a set up to this size is scored exactly from its stored vectors.
EXACT_ROWS = 50_000


def choose_kind(n: int, requested: str, threshold: int) -> Kind:
    if requested != "auto":
        return requested  # type: ignore[return-value]
    return "flat" if n < threshold else "hnsw"


class DenseIndex:
    """Inner-product search over L2-normalized vectors (= cosine); one interface for every FAISS type."""

    def __init__(self, index: faiss.Index, kind: Kind) -> None:
        self.index = index
        self.kind = kind

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(cls, vectors: np.ndarray, kind: Kind = "flat", *, hnsw_m: int = 32) -> DenseIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        index: faiss.Index
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 200
        elif kind == "ivf":
            nlist = max(1, int(4 * math.sqrt(n)))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
        else:
            raise ValueError(f"unknown index type {kind!r}")
        index.add(vectors)
        built = cls(index, kind)
        built.tune()
        return built

    def tune(self, k: int = 10) -> None:
        """Search-time accuracy knobs for the approximate types (set again after loading)."""
        if self.kind == "hnsw":
            faiss.downcast_index(self.index).hnsw.efSearch = max(128, 8 * k)  # type: ignore[attr-defined]
        elif self.kind == "ivf":
            ivf = faiss.extract_index_ivf(self.index)
            ivf.nprobe = max(16, ivf.nlist // 16)
            ivf.make_direct_map()  # lets reconstruct() fetch a stored vector by row

    def search(
        self, queries: np.ndarray, k: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row ids, best first; ids are -1 where fewer than k vectors exist.

        With ``rows`` only those rows are searched (a document filter): through a FAISS ID selector, which
        is exact on a flat index and on a large set; a smaller set under an approximate index is scored
        exactly from its stored vectors.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if rows is None:
            k = max(1, min(k, self.size)) if self.size else 1
            return self.index.search(queries, k)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        k = max(1, min(k, len(rows)))
        if self.kind != "flat" and len(rows) <= EXACT_ROWS:
            return _exact(queries, self.vectors(rows), rows, k)
        return self._search_selected(queries, k, rows)

    def _search_selected(self, queries: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search admitting only ``rows``, with this index type's accuracy knobs (parameters passed to
        a search replace the index's own). The selector is held here until the search returns."""
        selector = faiss.IDSelectorBatch(rows)
        params: faiss.SearchParameters
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = max(faiss.downcast_index(self.index).hnsw.efSearch, 8 * k)  # type: ignore[attr-defined]
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = faiss.extract_index_ivf(self.index).nprobe
        else:
            params = faiss.SearchParameters()
        params.sel = selector
        scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows`` (one call, not one per row)."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        return np.asarray(self.index.reconstruct_batch(rows), dtype=np.float32).reshape(len(rows), self.dim)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, kind: Kind) -> DenseIndex:
        loaded = cls(faiss.read_index(str(path)), kind)
        loaded.tune()
        return loaded


def _exact(queries: np.ndarray, vectors: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of ``rows`` for each query by inner product, best first (ties in row order)."""
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), rows[order]
