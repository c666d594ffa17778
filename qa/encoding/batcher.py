"""Dynamic micro-batching of query embeddings on the event loop: concurrent questions share one forward
pass, repeats hit a cache, a lone question goes straight to a model with every core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from qa.encoding.cache import EmbeddingCache
from qa.encoding.forward import Encode
from qa.encoding.worker import ProcessEncoder

log = logging.getLogger(__name__)

Encoder = Encode | ProcessEncoder
CLOSED = "the query batcher is closed"


@dataclass
class BatchStats:
    batches: int = 0  # forward passes
    encoded: int = 0  # texts sent to a model
    cache_hits: int = 0
    largest_batch: int = 0
    direct: int = 0  # lone questions sent at once to the first model process, with every core


@dataclass(eq=False)
class _Pending:
    text: str
    future: asyncio.Future[np.ndarray]
    arrived: float  # loop.time() (the monotonic clock, the same on every loop)


class _Slot:
    """One model and the batch it works on: idle, waiting for its socket to turn readable (a model
    process), or waiting for a thread (an in-process model, or a model process being restarted)."""

    def __init__(self, index: int, encoder: Encoder) -> None:
        self.index = index
        self.encoder = encoder
        self.process = encoder if isinstance(encoder, ProcessEncoder) else None
        self.batch: list[_Pending] | None = None
        self.texts: list[str] = []
        self.threads = 0  # torch threads asked for the batch (a model process only)
        self.retried = False
        self.reader: tuple[asyncio.AbstractEventLoop, int] | None = None  # where its reply is awaited
        self.work: Future[Any] | None = None  # its job on a thread
        self.then: Callable[[Future[Any]], None] | None = None  # what to do when that job is done

    @property
    def busy(self) -> bool:
        return self.batch is not None


class QueryBatcher:
    """Embeds questions for coroutines: ``await batcher.encode(text)``.

    Everything runs on the event loop, without threads in between: a text waits in a queue; a free model
    takes the oldest waiting text and the others that arrive within ``wait_ms`` of it (counted from that
    text's arrival, so one that already waited while the models were busy is held no longer), up to
    ``max_batch``; its reply is read when the model process's socket turns readable. Under load the
    batches form by themselves while the models work; the window only matters for the first question
    after a quiet spell. A lone question (no other request in ``busy``, nothing else being encoded) is
    sent at once to the first model, which may then use every core. An in-process model (a plain
    ``Encode``) runs on a thread of its own instead.

    The batcher serves the event loop it was last called from: a call from another loop moves it there
    when the first is closed or has nothing in flight here, else it is relayed to that loop.
    """

    def __init__(
        self,
        encode: Encoder | Sequence[Encoder],
        *,
        max_batch: int = 32,
        wait_ms: float = 2.0,
        cache_size: int = 4096,
        timeout: float | None = 60.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        encoders: list[Encoder] = [encode] if callable(encode) else list(encode)
        if not encoders:
            raise ValueError("at least one encoder is needed")
        self._slots = [_Slot(i, e) for i, e in enumerate(encoders)]
        self.max_batch = max_batch
        self.wait = max(wait_ms, 0.0) / 1000
        self.timeout = timeout
        self.cache = EmbeddingCache(cache_size)
        self.stats = BatchStats()
        self._waiting: deque[_Pending] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None  # uvloop's timer handles have no when(): keep the time
        self._timer_at = 0.0
        self._bind_lock = threading.Lock()
        self._requests = 0  # requests anywhere in the pipeline (see ``busy``), not only encoding here
        self._requests_lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None  # in-process models and restarts
        self._closed = False

    # --- callers ----------------------------------------------------------------------------------
    async def encode(self, text: str) -> np.ndarray:
        """``text``'s vector (read-only; shared with the cache and every caller of the same text).

        Raises TimeoutError past ``timeout`` seconds, RuntimeError when the model fails or the batcher
        is closed. A caller that gives up (cancelled, timed out) leaves nothing behind: its reply is
        still read off the model's socket and dropped.
        """
        cached = self.cache.get(text)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached
        if self._closed:
            raise RuntimeError(CLOSED)
        loop = asyncio.get_running_loop()
        while loop is not self._loop:
            owner = self._bind(loop)
            if owner is None:
                break
            relayed = asyncio.run_coroutine_threadsafe(self.encode(text), owner)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(relayed), self.timeout)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not relayed.cancelled() or (task is not None and task.cancelling()):
                    raise
                # the owner loop went away under it (asyncio.run ending): serve the text here
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._waiting.append(_Pending(text, future, loop.time()))
        self._dispatch()
        if self.timeout is None:
            return await future
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(f"the question's embedding took longer than {self.timeout:g} s") from None

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Count a request for its whole life, so that "alone" means no other request anywhere in the
        pipeline: only then is a question sent without the batching window and with every core (other
        requests need a core for their own work)."""
        with self._requests_lock:
            self._requests += 1
        try:
            yield
        finally:
            with self._requests_lock:
                self._requests -= 1

    def close(self, timeout: float = 5.0) -> None:
        """Fail every waiting caller (RuntimeError) and stop the model processes; from any thread."""
        with self._bind_lock:
            if self._closed:
                return
            self._closed = True
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or loop.is_closed() or loop is running or not loop.is_running():
            self._shutdown()
        else:  # the loop runs on another thread: it alone touches the queue and the readers
            done = threading.Event()

            def shutdown() -> None:
                self._shutdown()
                done.set()

            loop.call_soon_threadsafe(shutdown)
            done.wait(timeout)
        for slot in self._slots:
            close = getattr(slot.encoder, "close", None)
            if callable(close):
                close()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    # --- the loop it serves -----------------------------------------------------------------------
    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop | None:
        """Serve ``loop`` from now on, or return the live loop that still has work in flight here."""
        with self._bind_lock:
            old = self._loop
            if self._closed:
                raise RuntimeError(CLOSED)
            active = bool(self._waiting) or any(s.busy for s in self._slots)
            if old is not None and not old.is_closed() and old.is_running() and active:
                return old
            self._loop = loop
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            # Callers of a closed loop are gone; those of a loop merely idle get their vectors through it.
            self._waiting = deque(p for p in self._waiting if not p.future.get_loop().is_closed())
            for slot in self._slots:
                if slot.reader is not None:  # the reply must still be read, now on this loop
                    reader_loop, fd = slot.reader
                    if not reader_loop.is_closed():
                        reader_loop.remove_reader(fd)
                    loop.add_reader(fd, self._on_reply, slot)
                    slot.reader = (loop, fd)
                if slot.work is not None and slot.work.done():  # its callback may have met the old loop
                    loop.call_soon(self._thread_done, slot, slot.work)
            if self._waiting:
                loop.call_soon(self._dispatch)
            return None

    def _dispatch(self) -> None:
        """Hand waiting texts to free models: at once when alone or a batch is full, else once the oldest
        has waited ``wait_ms``."""
        if self._closed or self._loop is None:
            return
        waiting = self._waiting
        while waiting:
            while waiting and waiting[0].future.done():  # its caller gave up
                waiting.popleft()
            if not waiting:
                break
            slot = next((s for s in self._slots if not s.busy), None)
            if slot is None:
                return  # the next reply dispatches again
            alone = self._requests <= 1 and slot.index == 0 and not any(s.busy for s in self._slots)
            if not alone and len(waiting) < self.max_batch:
                deadline = waiting[0].arrived + self.wait
                if self._loop.time() < deadline:
                    self._arm(deadline)
                    return
            batch: list[_Pending] = []
            while waiting and len(batch) < self.max_batch:
                pending = waiting.popleft()
                if not pending.future.done():
                    batch.append(pending)
            if batch:
                self._start(slot, batch, wide=alone and len(batch) == 1)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            if self._timer_at <= deadline:
                return
            self._timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_at(deadline, self._on_timer)
        self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    # --- one batch on one model -------------------------------------------------------------------
    def _start(self, slot: _Slot, batch: list[_Pending], *, wide: bool) -> None:
        slot.batch = batch
        slot.texts = list(dict.fromkeys(p.text for p in batch))  # one row per distinct text
        slot.retried = False
        if slot.process is None:
            self._in_thread(slot, partial(slot.encoder, slot.texts), self._encoded_in_thread)
            return
        slot.threads = slot.process.wide_threads if wide else slot.process.threads
        if wide:
            self.stats.direct += 1
        self._send(slot)

    def _send(self, slot: _Slot) -> None:
        assert slot.process is not None and self._loop is not None
        try:
            fd = slot.process.fileno()
            slot.process.send(slot.texts, slot.threads)
        except (EOFError, OSError):
            self._model_lost(slot)
            return
        # Read even when every caller has given up: the reply must never be left for the next batch.
        self._loop.add_reader(fd, self._on_reply, slot)
        slot.reader = (self._loop, fd)

    def _on_reply(self, slot: _Slot) -> None:
        if slot.reader is None or slot.process is None:
            return
        loop, fd = slot.reader
        loop.remove_reader(fd)
        slot.reader = None
        if self._closed:
            return
        try:
            vectors = slot.process.receive()
        except (EOFError, OSError):
            self._model_lost(slot)
            return
        except Exception as exc:
            self._finish(slot, exc)
            return
        self._finish(slot, vectors)

    def _model_lost(self, slot: _Slot) -> None:
        """The model process died under a batch: start it again (on a thread: loading takes seconds) and
        send the batch once more; a second loss fails the batch."""
        assert slot.process is not None
        if slot.retried or self._closed:
            self._finish(slot, RuntimeError("the query model process died while embedding the question"))
            return
        slot.retried = True
        log.warning("the query model process (pid %s) died; starting it again", slot.process.pid)
        self._in_thread(slot, slot.process.restart, self._restarted)

    def _restarted(self, slot: _Slot, work: Future[Any]) -> None:
        error = work.exception()
        if error is not None:
            self._finish(slot, RuntimeError(f"the query model process could not be restarted: {error}"))
        else:
            self._send(slot)

    def _encoded_in_thread(self, slot: _Slot, work: Future[Any]) -> None:
        error = work.exception()
        self._finish(slot, error if error is not None else work.result())

    def _finish(self, slot: _Slot, outcome: np.ndarray | BaseException) -> None:
        batch, texts = slot.batch or [], slot.texts
        slot.batch, slot.texts = None, []
        if not isinstance(outcome, BaseException):
            try:
                by_text = self._keep(texts, np.asarray(outcome, dtype=np.float32))
            except Exception as exc:
                outcome = exc
            else:
                for p in batch:
                    _settle(p.future, by_text[p.text])
        if isinstance(outcome, BaseException):  # every caller of the batch gets the error; the model lives on
            log.error("query embedding failed for a batch of %d: %s", len(texts), outcome)
            for p in batch:
                _settle(p.future, outcome)
        self._dispatch()

    def _keep(self, texts: list[str], vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Each text's vector (read-only: the cache and every caller asking the same text share it), cached
        and counted."""
        if vectors.shape[0] != len(texts):
            raise RuntimeError(f"the encoder returned {vectors.shape[0]} vectors for {len(texts)} texts")
        by_text = {}
        for text, row in zip(texts, vectors, strict=True):
            vector = row.copy()
            vector.setflags(write=False)
            by_text[text] = vector
            self.cache.put(text, vector)
        self.stats.batches += 1
        self.stats.encoded += len(texts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        return by_text

    # --- work on a thread (an in-process model, a restart) ------------------------------------------
    def _in_thread(
        self, slot: _Slot, job: Callable[[], Any], then: Callable[[_Slot, Future[Any]], None]
    ) -> None:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(len(self._slots), thread_name_prefix="qa-query-model")
        slot.then = partial(then, slot)
        slot.work = work = self._threads.submit(job)
        work.add_done_callback(partial(self._thread_finished, slot))

    def _thread_finished(self, slot: _Slot, work: Future[Any]) -> None:
        """On the thread: hand the outcome to the loop the batcher serves now."""
        loop = self._loop
        if loop is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # that loop closed: the next one to bind picks it up
            loop.call_soon_threadsafe(self._thread_done, slot, work)

    def _thread_done(self, slot: _Slot, work: Future[Any]) -> None:
        if slot.work is not work or self._closed:
            return  # already handled
        slot.work, then = None, slot.then
        slot.then = None
        if work.cancelled():
            self._finish(slot, RuntimeError(CLOSED))
        elif then is not None:
            then(work)

    # --- closing ----------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        """On the loop (or with no loop running it): fail every caller and drop the readers."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        error = RuntimeError(CLOSED)
        for slot in self._slots:
            if slot.reader is not None:
                loop, fd = slot.reader
                if not loop.is_closed():
                    loop.remove_reader(fd)
                slot.reader = None
            for p in slot.batch or []:
                _settle(p.future, error)
            slot.batch, slot.work, slot.then = None, None, None
        while self._waiting:
            _settle(self._waiting.popleft().future, error)


def _settle(future: asyncio.Future[np.ndarray], outcome: np.ndarray | BaseException) -> None:
    """Resolve ``future`` (unless its caller gave up), from its own loop or any other thread."""
    if future.done():
        return
    loop = future.get_loop()
    if loop.is_closed():
        return
    try:
        here = asyncio.get_running_loop() is loop
    except RuntimeError:
        here = not loop.is_running()  # no loop on this thread, nor one running it elsewhere
    if here:
        _set(future, outcome)
    else:
        loop.call_soon_threadsafe(_set, future, outcome)


def _set(future: asyncio.Future[np.ndarray], outcome: np.ndarray | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
