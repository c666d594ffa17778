"""Dense vector index over normalized embeddings: exact (flat) for small corpora, HNSW or IVF for large."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

Kind = Literal["flat", "hnsw", "ivf"]


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

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row ids, best first; ids are -1 where fewer than k vectors exist."""
        k = max(1, min(k, self.size)) if self.size else 1
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        scores, ids = self.index.search(queries, k)
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
