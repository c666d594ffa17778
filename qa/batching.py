"""Dynamic micro-batching of query embeddings: concurrent questions share one forward pass, repeats hit a cache."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.forward import Encode

if TYPE_CHECKING:
    from qa.embedding import Embedder
    from qa.settings import Settings

log = logging.getLogger(__name__)


def serving_threads(configured: int, processes: int = 1) -> int:
    """torch threads per query-model process under load: the setting, or (0) the cores but one, shared
    out between the ``processes`` (at least one each).

    The request pipeline (parsing, BM25, answer extraction) needs a core of its own; torch spinning on
    every core starves it, and on a busy two-core machine a two-thread forward pass was measured more than
    ten times slower than a one-thread one.
    """
    return configured or max(1, ((os.cpu_count() or 1) - 1) // max(1, processes))


# Forward passes yield to the server process: under load its short bursts of request handling (and the
# batch hand-offs) then never queue behind a pass. 16 clients, 60 s: 166-172 -> 166-183 questions/s.
MODEL_NICENESS = 5


def model_processes(configured: int) -> int:
    """Query-model processes for a server: the setting, or (0) one per core, at most four.

    Each runs single-threaded under load, so when the request pipeline takes a core for a moment the
    others carry on, where one multi-threaded model stalls at every barrier. On the 2-core machine
    (bench/throughput.py, 16 clients, 60 s): 1 process 135-159 questions/s; with the niceness below and the
    GIL switch interval (qa/services.py), 2 processes 183-194 (p95 129-137 ms), 3 processes 165-186 (p95
    140-164 ms).
    """
    return configured or max(1, min(os.cpu_count() or 1, 4))


def model_worker_main(fd: int, model: str, threads: int) -> None:
    """The child process: load the model, then encode each list of texts received until told to stop.

    It ignores Ctrl-C (the server it belongs to stops it) and exits when the server's end of the socket
    closes, so it never outlives the server, even one that was killed.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(MODEL_NICENESS)
    conn = Connection(fd)
    from qa.embedding import Embedder
    from qa.forward import packed_encoder

    try:
        embedder = Embedder(model, threads=threads)
        encode = packed_encoder(embedder)
    except Exception as exc:  # reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", embedder.dim))
    import torch

    current = threads
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        texts, wanted = message
        if wanted != current:  # all cores for a lone question, fewer when the server is busy
            torch.set_num_threads(wanted)
            current = wanted
        try:
            # Raw float32 bytes: pickling the array itself costs ~10 us each way.
            vectors = np.ascontiguousarray(encode(texts), dtype=np.float32)
            conn.send(("ok", (len(vectors), vectors.tobytes())))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _vectors(reply: tuple[str, Any]) -> np.ndarray:
    """The vectors in a model process's reply (rows, float32 bytes), or its error raised."""
    kind, payload = reply
    if kind != "ok":
        raise RuntimeError(f"query embedding failed in the model process: {payload}")
    rows, raw = payload
    return np.frombuffer(raw, dtype=np.float32).reshape(rows, -1)


class ProcessEncoder:
    """The query model in a child process: an ``Encode`` whose forward passes never wait on this process's GIL.

    In one process, every torch operator of a forward pass must re-take the GIL from the request threads;
    with a single busy Python thread beside it, a forward pass was measured 10-20 times slower. The child
    has its own interpreter; the parent only waits on a pipe (which releases the GIL). A child that dies
    is started again and the batch retried once.
    """

    def __init__(
        self,
        model: str,
        *,
        threads: int,
        wide_threads: int | None = None,
        start_timeout: float = 300.0,
        start: bool = True,
    ) -> None:
        self.model = model
        self.threads = threads
        self.wide_threads = wide_threads or threads  # used when the caller says nothing else is running
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self.restarts = 0
        self._closed = False
        if start:
            self._start()

    @classmethod
    def start_many(cls, count: int, model: str, **kwargs: Any) -> list[ProcessEncoder]:
        """``count`` model processes, loading side by side (startup takes about as long as for one)."""
        encoders = [cls(model, start=False, **kwargs) for _ in range(count)]
        spawned: list[tuple[subprocess.Popen[bytes], Connection]] = []
        try:
            for encoder in encoders:
                spawned.append(encoder._spawn())
            for encoder, (process, conn) in zip(encoders, spawned, strict=True):
                encoder._await_ready(process, conn)
        except BaseException:
            for process, conn in spawned:
                conn.close()  # a started child exits when its socket closes
                if process.poll() is None:
                    process.kill()
                    process.wait(5)
            raise
        return encoders

    def _start(self) -> None:
        self._await_ready(*self._spawn())

    def _spawn(self) -> tuple[subprocess.Popen[bytes], Connection]:
        # A fresh interpreter (not multiprocessing's spawn, which re-runs the parent's main script).
        ours, theirs = socket.socketpair()
        code = "import sys; from qa.batching import model_worker_main as m; m(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))"
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno()), self.model, str(self.threads)],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        return process, Connection(ours.detach())

    def _await_ready(self, process: subprocess.Popen[bytes], parent: Connection) -> None:
        if not parent.poll(self.start_timeout):
            process.kill()
            process.wait(5)
            raise RuntimeError(f"the query model process did not start within {self.start_timeout:.0f} s")
        try:
            kind, payload = parent.recv()
        except (EOFError, OSError):
            kind, payload = "error", f"it exited with {process.wait(5)}"
        if kind != "ready":
            process.wait(5)
            raise RuntimeError(f"the query model process failed to load '{self.model}': {payload}")
        self.dim = int(payload)
        self._process, self._conn = process, parent

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def __call__(self, texts: list[str], *, alone: bool = False) -> np.ndarray:
        """Vectors of ``texts``; ``alone`` (no other request in the server) lets the model use every core."""
        threads = self.wide_threads if alone else self.threads
        with self._lock:
            if self._closed:
                raise RuntimeError("the query model process was closed")
            try:
                reply = self._ask(texts, threads)
            except (EOFError, OSError):
                log.warning("the query model process (pid %s) died; starting it again", self.pid)
                self._stop()
                self._start()
                self.restarts += 1
                reply = self._ask(texts, threads)
        return _vectors(reply)

    def _ask(self, texts: list[str], threads: int) -> tuple[str, Any]:
        self._send(texts, threads)
        return self._receive()

    def _send(self, texts: list[str], threads: int) -> None:
        if self._conn is None:
            raise OSError("the query model process is not running")
        self._conn.send((texts, threads))

    def _receive(self) -> tuple[str, Any]:
        if self._conn is None:
            raise OSError("the query model process is not running")
        reply: tuple[str, Any] = self._conn.recv()
        return reply

    # --- one question from an event loop, without a thread between (see QueryBatcher.encode_async) -----
    # The caller keeps every other user off this model from send_request to read_reply; a process found
    # dead raises EOFError or OSError here and is started again by the next ordinary call.
    def fileno(self) -> int:
        """The socket to the model process, readable when its reply has arrived."""
        if self._conn is None or self._closed:
            raise OSError("the query model process is not running")
        return self._conn.fileno()

    def send_request(self, texts: list[str]) -> None:
        """Send ``texts`` (a lone request: the model may use every core); the reply is read by read_reply."""
        self._send(texts, self.wide_threads)

    def read_reply(self) -> np.ndarray:
        return _vectors(self._receive())

    def _stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self._conn.close()
            self._conn = None
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
            self._process = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()


def query_encoder(settings: Settings, embedder: Embedder) -> list[Encode]:
    """How a server embeds questions: in ``settings.model_processes`` model processes (when
    ``settings.model_process``), else with ``embedder`` on a thread of its own."""
    if not settings.model_process:
        return [embedder.encode]
    count = model_processes(settings.model_processes)
    threads = serving_threads(settings.torch_threads, count)
    wide = settings.torch_threads or os.cpu_count() or threads
    return list(ProcessEncoder.start_many(count, settings.model, threads=threads, wide_threads=wide))


class _ModelLost(Exception):
    """The model process went away under a lone question; the batching thread's retry takes over."""


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
    direct: int = 0  # lone questions sent to the first model from the event loop, not through a thread


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
    """A thread per model runs it; callers from any thread (or coroutine) wait on a future for their vector.

    A free thread takes the oldest waiting text, then gathers more for at most ``wait_ms`` counted from that
    text's arrival (so a text that already waited while the models were busy is not held any longer), up to
    ``max_batch`` texts, and encodes them in one forward pass. Under load the batches form by themselves
    while the previous ones run; the window only matters for the first question after a quiet spell.
    With several models (model processes), a batch goes to whichever is free. A lone question awaited on
    an event loop skips the threads altogether (``encode_async``).
    """

    def __init__(
        self,
        encode: Encode | Sequence[Encode],
        *,
        max_batch: int = 32,
        wait_ms: float = 2.0,
        cache_size: int = 4096,
        name: str = "qa-query-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._encoders: list[Encode] = [encode] if callable(encode) else list(encode)
        if not self._encoders:
            raise ValueError("at least one encoder is needed")
        self.max_batch = max_batch
        self.wait = max(wait_ms, 0.0) / 1000
        self.cache = EmbeddingCache(cache_size)
        self.stats = BatchStats()
        self._stats_lock = threading.Lock()
        self._waiting: deque[_Pending] = deque()
        self._busy = [False] * len(self._encoders)  # which models are in a forward pass
        self._idle = 0  # threads waiting for work, or for company in the batching window
        self._cond = threading.Condition()
        self._closed = False
        self._in_flight = 0  # requests anywhere in the pipeline (see ``busy``), not only waiting here
        # (loop, socket, future) of a lone question sent to the first model from an event loop
        self._direct: tuple[asyncio.AbstractEventLoop, int, asyncio.Future[np.ndarray]] | None = None
        self._in_flight_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i, e), name=f"{name}-{i}", daemon=True)
            for i, e in enumerate(self._encoders)
        ]
        for thread in self._threads:
            thread.start()

    # --- callers ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Count a request for its whole life: a lone request is not held for company, and its forward
        pass may use every core; with others in flight the window and the narrower thread count apply."""
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    @property
    def alone(self) -> bool:
        return self._in_flight <= 1

    def _cached(self, text: str) -> np.ndarray | None:
        vector = self.cache.get(text)
        if vector is not None:
            self.stats.cache_hits += 1
        return vector

    def submit(self, text: str) -> Future[np.ndarray]:
        """A future of ``text``'s vector (already resolved when the vector is cached)."""
        future: Future[np.ndarray] = Future()
        cached = self._cached(text)
        if cached is not None:
            future.set_result(cached)
            return future
        with self._cond:
            if self._closed:
                raise RuntimeError("the query batcher is closed")
            self._waiting.append(_Pending(text, future, time.perf_counter()))
            if self._idle:  # a busy model looks at the queue when its pass ends: no need to wake it
                self._cond.notify_all()
        return future

    def encode(self, text: str, timeout: float | None = 60.0) -> np.ndarray:
        """``text``'s vector; blocks the calling thread (never call it on the event loop)."""
        return self.submit(text).result(timeout)

    async def encode_async(self, text: str) -> np.ndarray:
        """``text``'s vector, awaited without blocking the event loop.

        A lone question (nothing else in flight, the first model free) goes from the event loop straight
        to the first model process, and its reply is read when the socket turns readable: no hand-off to a
        batching thread and back, which cost ~0.3 ms of a ~15 ms answer on the 2-core machine.
        """
        cached = self._cached(text)
        if cached is not None:
            return cached
        direct = self._send_direct(text)
        if direct is not None:
            try:
                return await direct
            except _ModelLost:
                pass  # the batching thread starts the model process again and encodes the text
        return await asyncio.wrap_future(self.submit(text))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads after the texts already queued are encoded (and the model processes, if any)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._abandon_direct()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for encode in self._encoders:
            close = getattr(encode, "close", None)
            if callable(close):
                close()

    # --- a lone question on the event loop --------------------------------------------------------
    def _send_direct(self, text: str) -> asyncio.Future[np.ndarray] | None:
        """Send ``text`` to the first model from the running loop, or None when that is not for now (other
        requests in flight or queued, the model busy, or it runs in this process)."""
        encoder = self._encoders[0]
        if not isinstance(encoder, ProcessEncoder):
            return None
        with self._cond:
            if self._closed or self._busy[0] or self._waiting or not self.alone:
                return None
            self._busy[0] = True  # the first batching thread leaves it alone until the reply is read
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        try:
            fd = encoder.fileno()
            encoder.send_request([text])
        except OSError:
            self._release_first()
            return None
        self._direct = (loop, fd, future)
        self.stats.direct += 1
        # Read even when the caller has given up (a timeout): the reply must never be left for the next one.
        loop.add_reader(fd, self._on_direct_reply, encoder, text, future)
        return future

    def _on_direct_reply(
        self, encoder: ProcessEncoder, text: str, future: asyncio.Future[np.ndarray]
    ) -> None:
        if self._direct is None or self._direct[2] is not future:
            return
        loop, fd, _ = self._direct
        loop.remove_reader(fd)
        self._direct = None
        outcome: np.ndarray | BaseException
        try:
            outcome = self._keep([text], encoder.read_reply())[text]
        except (EOFError, OSError) as exc:
            outcome = _ModelLost(f"the query model process was lost: {exc}")
        except Exception as exc:
            log.exception("query embedding failed for a lone question")
            outcome = exc
        finally:
            self._release_first()
        if future.done():  # the caller was cancelled
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def _release_first(self) -> None:
        with self._cond:
            self._busy[0] = False
            # Only when work waits: a needless wake-up costs the event loop the GIL for a moment, every question.
            if self._idle and self._waiting:
                self._cond.notify_all()

    def _abandon_direct(self) -> None:
        """On close: fail a lone question still waiting on the first model (its reader goes too)."""
        direct = self._direct
        if direct is None:
            return
        loop, fd, future = direct

        def abandon() -> None:
            if self._direct is not direct:
                return
            self._direct = None
            loop.remove_reader(fd)
            self._release_first()
            if not future.done():
                future.set_exception(RuntimeError("the query batcher is closed"))

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            abandon()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(abandon)

    # --- the batching threads ---------------------------------------------------------------------
    def _run(self, worker: int, encode: Encode) -> None:
        while True:
            batch = self._gather(worker)
            if not batch:
                return  # closed, and nothing is left
            try:
                self._process(encode, batch)
            finally:
                with self._cond:
                    self._busy[worker] = False
                    if self._waiting:  # others may wait for this model to be free; new work wakes them anyway
                        self._cond.notify_all()

    def _gather(self, worker: int) -> list[_Pending]:
        """The next batch for ``worker``. A lone question always meets the first model (its caches are
        warm); under load any free model takes the oldest waiting questions."""
        with self._cond:
            # (a model is busy here only while the event loop has lent it for a lone question)
            while not (
                self._waiting and not self._busy[worker] and (all(self._busy[:worker]) or not self.alone)
            ):
                if self._closed and not self._waiting:
                    return []
                self._idle += 1
                try:
                    self._cond.wait()
                finally:
                    self._idle -= 1
            batch = [self._waiting.popleft()]
            deadline = batch[0].arrived + (0.0 if self.alone else self.wait)
            while len(batch) < self.max_batch:
                if self._waiting:
                    batch.append(self._waiting.popleft())
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._closed:
                    break
                self._idle += 1  # waiting for company: a new question should wake it
                try:
                    self._cond.wait(remaining)
                finally:
                    self._idle -= 1
            self._busy[worker] = True
            return batch

    def _process(self, encode: Encode, batch: list[_Pending]) -> None:
        live = [p for p in batch if p.future.set_running_or_notify_cancel()]
        if not live:
            return
        texts = list(dict.fromkeys(p.text for p in live))  # one row per distinct text
        try:
            if isinstance(encode, ProcessEncoder):
                raw = encode(texts, alone=self.alone and len(texts) == 1)
            else:
                raw = encode(texts)
            by_text = self._keep(texts, np.asarray(raw, dtype=np.float32))
        except Exception as exc:  # every waiting caller gets the error, the thread lives on
            log.exception("query embedding failed for a batch of %d", len(texts))
            for p in live:
                p.future.set_exception(exc)
            return
        for p in live:
            p.future.set_result(by_text[p.text])

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
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.encoded += len(texts)
            self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        return by_text
