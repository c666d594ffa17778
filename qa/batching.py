"""Dynamic micro-batching of query embeddings: concurrent questions share one forward pass, repeats hit a cache."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

Encode = Callable[[list[str]], np.ndarray]


def serving_threads(configured: int) -> int:
    """torch threads for a serving process: the setting, or (0) one fewer than the cores.

    The model runs on its own thread while the request pipeline (parsing, BM25, answer extraction) needs a
    core of its own; torch spinning on every core starves it, and on a busy two-core machine a two-thread
    forward pass was measured more than ten times slower than a one-thread one.
    """
    return configured or max(1, (os.cpu_count() or 1) - 1)


@dataclass
class _Pending:
    text: str
    future: Future[np.ndarray]
    arrived: float


@dataclass
class BatchStats:
    batches: int = 0
    encoded: int = 0  # texts sent to the model
    cache_hits: int = 0
    largest_batch: int = 0


class EmbeddingCache:
    """A bounded, thread-safe LRU of query vectors keyed by the exact text; vectors are read-only."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
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


class QueryBatcher:
    """One thread runs the model; callers from any thread (or coroutine) wait on a future for their vector.

    The thread takes the oldest waiting text, then gathers more for at most ``wait_ms`` counted from that
    text's arrival (so a text that already waited while the model was busy is not held any longer), up to
    ``max_batch`` texts, and encodes them in one forward pass. Under load the batches form by themselves
    while the previous one runs; the window only matters for the first question after a quiet spell.
    """

    def __init__(
        self,
        encode: Encode,
        *,
        max_batch: int = 32,
        wait_ms: float = 2.0,
        cache_size: int = 4096,
        name: str = "qa-query-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._encode = encode
        self.max_batch = max_batch
        self.wait = max(wait_ms, 0.0) / 1000
        self.cache = EmbeddingCache(cache_size)
        self.stats = BatchStats()
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # --- callers ----------------------------------------------------------------------------------
    def submit(self, text: str) -> Future[np.ndarray]:
        """A future of ``text``'s vector (already resolved when the vector is cached)."""
        future: Future[np.ndarray] = Future()
        cached = self.cache.get(text)
        if cached is not None:
            self.stats.cache_hits += 1
            future.set_result(cached)
            return future
        if self._closed:
            raise RuntimeError("the query batcher is closed")
        self._queue.put(_Pending(text, future, time.perf_counter()))
        return future

    def encode(self, text: str, timeout: float | None = 60.0) -> np.ndarray:
        """``text``'s vector; blocks the calling thread (never call it on the event loop)."""
        return self.submit(text).result(timeout)

    async def encode_async(self, text: str) -> np.ndarray:
        """``text``'s vector, awaited without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(text))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after the texts already queued are encoded."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    # --- the batching thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._process(batch)
            if stop:
                return

    def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch = [first]
        deadline = first.arrived + self.wait
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _process(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if p.future.set_running_or_notify_cancel()]
        if not live:
            return
        texts = list(dict.fromkeys(p.text for p in live))  # one row per distinct text
        try:
            vectors = np.asarray(self._encode(texts), dtype=np.float32)
            if vectors.shape[0] != len(texts):
                raise RuntimeError(f"the encoder returned {vectors.shape[0]} vectors for {len(texts)} texts")
        except Exception as exc:  # every waiting caller gets the error, the thread lives on
            log.exception("query embedding failed for a batch of %d", len(texts))
            for p in live:
                p.future.set_exception(exc)
            return
        by_text = {}
        for text, row in zip(texts, vectors, strict=True):
            vector = row.copy()
            vector.setflags(write=False)  # shared by the cache and every caller asking the same text
            by_text[text] = vector
            self.cache.put(text, vector)
        self.stats.batches += 1
        self.stats.encoded += len(texts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        for p in live:
            p.future.set_result(by_text[p.text])
