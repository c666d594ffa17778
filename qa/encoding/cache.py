"""A bounded LRU of query vectors, so a repeated question skips the model."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np


class EmbeddingCache:
    """A bounded, thread-safe LRU of query vectors keyed by the exact text; vectors are read-only."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        # The batcher touches it from the event loop only; the lock keeps it safe for any other user.
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        if self.size <= 0:
            return None
        with self._lock:
            vector = self._items.get(text)
            if vector is not None:
                self._items.move_to_end(text)
            return vector

    def put(self, text: str, vector: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[text] = vector
            self._items.move_to_end(text)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
