"""Passage and sentence vectors cached on disk by (model weights hash, text), so a change embeds only new text."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

CACHE_FILE = "vectors.sqlite3"
Encode = Callable[[list[str]], np.ndarray]


class VectorCache:
    """A sqlite table of float32 vectors; a key is sha256(weights hash, text), so other weights never match.

    Without a weights hash (a model folder with no weights file) nothing is cached: a vector is only reused
    when it is known to come from the same weights.
    """

    def __init__(self, path: Path, weights: str | None, dim: int) -> None:
        self.weights = weights
        self.dim = dim
        self._db = sqlite3.connect(path, isolation_level=None) if weights else None
        if self._db is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)"
            )

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.weights}\0{text}".encode()).digest()

    def get(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        if self._db is None:
            return {}
        found: dict[str, np.ndarray] = {}
        for text in set(texts):
            row = self._db.execute("SELECT vector FROM vectors WHERE key = ?", (self._key(text),)).fetchone()
            if row is not None and len(row[0]) == 4 * self.dim:
                found[text] = np.frombuffer(row[0], dtype=np.float32)
        return found

    def put(self, items: dict[str, np.ndarray]) -> None:
        if self._db is None or not items:
            return
        rows = [(self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in items.items()]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def encode_cached(
    texts: list[str], encode: Encode, cache: VectorCache, known: dict[str, np.ndarray]
) -> tuple[np.ndarray, set[str]]:
    """Vectors of ``texts`` (rows in order) and the distinct texts the model had to embed.

    ``known`` holds vectors at hand already (the current build's, same weights); the rest come from the
    cache, and only what neither has is embedded (in one call to ``encode``), then cached.
    """
    vectors = dict(known)
    missing = [t for t in dict.fromkeys(texts) if t not in vectors]
    vectors.update(cache.get(missing))
    todo = [t for t in missing if t not in vectors]
    if todo:
        fresh = encode(todo)
        new = {t: fresh[i] for i, t in enumerate(todo)}
        cache.put(new)
        vectors.update(new)
    if not texts:
        return np.zeros((0, cache.dim), dtype=np.float32), set()
    return np.stack([np.asarray(vectors[t], dtype=np.float32) for t in texts]), set(todo)
