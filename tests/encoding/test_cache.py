"""The LRU of query vectors."""

from __future__ import annotations

import numpy as np

from qa.encoding.cache import EmbeddingCache


def test_the_cache_keeps_the_most_recently_used() -> None:
    cache = EmbeddingCache(2)
    a, b, c = (np.full(3, i, dtype=np.float32) for i in range(3))
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # now the most recent
    cache.put("c", c)
    assert cache.get("b") is None and cache.get("a") is a and cache.get("c") is c and len(cache) == 2


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    cache = EmbeddingCache(0)
    cache.put("a", np.zeros(3, dtype=np.float32))
    assert cache.get("a") is None and len(cache) == 0
