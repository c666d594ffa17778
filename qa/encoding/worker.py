"""The query model in a child process: its main loop, and the client the server talks to it through."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.encoding.forward import Encode
from qa.encoding.tuning import MODEL_NICENESS, model_processes, serving_threads, wide_threads

if TYPE_CHECKING:
    from qa.encoding.model import Embedder
    from qa.settings import Settings

log = logging.getLogger(__name__)


def model_worker_main(fd: int, model: str, threads: int) -> None:
    """The child process: load the model, then encode each list of texts received until told to stop.

    It ignores Ctrl-C (the server it belongs to stops it) and exits when the server's end of the socket
    closes, so it never outlives the server, even one that was killed.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(MODEL_NICENESS)
    conn = Connection(fd)
    from qa.encoding.forward import packed_encoder
    from qa.encoding.model import Embedder

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
            # Raw float32 bytes: cheaper to send and rebuild than a pickled array.
            vectors = np.ascontiguousarray(encode(texts), dtype=np.float32)
            reply: tuple[str, Any] = ("ok", (len(vectors), vectors.tobytes()))
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except OSError:  # the server went away mid-reply
            return


def _blocking(conn: Connection) -> None:
    """Put the socket back in blocking mode: an event loop's reader (uvloop's) makes it non-blocking, and
    ``Connection`` reads and writes whole messages only on a blocking socket (a reply arriving in pieces
    would otherwise raise BlockingIOError, and look like a dead model)."""
    fd = conn.fileno()
    if not os.get_blocking(fd):
        os.set_blocking(fd, True)


def _vectors(reply: tuple[str, Any]) -> np.ndarray:
    """The vectors in a model process's reply (rows, float32 bytes), or its error raised."""
    kind, payload = reply
    if kind != "ok":
        raise RuntimeError(f"query embedding failed in the model process: {payload}")
    rows, raw = payload
    return np.frombuffer(raw, dtype=np.float32).reshape(rows, -1)


class ProcessEncoder:
    """The query model in a child process, so its forward passes never wait on the server's GIL.

    In one process, every torch operator of a forward pass must re-take the GIL from the request
    handling; with one busy Python thread beside it a forward pass runs many times slower. The child has
    its own interpreter, and the server only waits for its socket to turn readable.

    Two ways to use it: call it (``encoder(texts)``, blocking, thread-safe; a child found dead is started
    again and the texts sent once more), or, from an event loop that owns it, ``send`` then ``receive``
    once ``fileno()`` is readable (a dead child raises EOFError or OSError; ``restart`` starts a new one).
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
        self.wide_threads = wide_threads or threads  # for a lone question: nothing else is running
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
        code = (
            "import sys; from qa.encoding.worker import model_worker_main as m; "
            "m(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))"
        )
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

    @property
    def closed(self) -> bool:
        return self._closed

    def __call__(self, texts: list[str], *, alone: bool = False) -> np.ndarray:
        """Vectors of ``texts``; ``alone`` (no other request in the server) lets the model use every core."""
        threads = self.wide_threads if alone else self.threads
        with self._lock:
            if self._closed:
                raise RuntimeError("the query model process was closed")
            try:
                self.send(texts, threads)
                return self.receive()
            except (EOFError, OSError):
                log.warning("the query model process (pid %s) died; starting it again", self.pid)
                self.restart()
                self.send(texts, threads)
                return self.receive()

    # --- from an event loop: send, wait for fileno() to be readable, receive ----------------------------
    def fileno(self) -> int:
        """The socket to the model process, readable when its reply has arrived."""
        if self._conn is None or self._closed:
            raise OSError("the query model process is not running")
        return self._conn.fileno()

    def send(self, texts: list[str], threads: int) -> None:
        if self._conn is None or self._closed:
            raise OSError("the query model process is not running")
        _blocking(self._conn)
        self._conn.send((texts, threads))

    def receive(self) -> np.ndarray:
        """The reply to the last ``send`` (its vectors, or the model's error raised as RuntimeError)."""
        if self._conn is None:
            raise OSError("the query model process is not running")
        _blocking(self._conn)
        reply: tuple[str, Any] = self._conn.recv()
        return _vectors(reply)

    def restart(self) -> None:
        """Stop the child (it may be dead already) and start a new one; blocks while the model loads."""
        if self._closed:
            raise RuntimeError("the query model process was closed")
        self._stop()
        self._start()
        self.restarts += 1

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
        self._closed = True
        with self._lock:
            self._stop()


def query_encoders(settings: Settings, embedder: Embedder) -> list[Encode] | list[ProcessEncoder]:
    """How a server embeds questions: in ``settings.model_processes`` model processes (when
    ``settings.model_process``), else with ``embedder`` in this process."""
    if not settings.model_process:
        in_process: list[Encode] = [embedder.encode]
        return in_process
    count = model_processes(settings.model_processes)
    threads = serving_threads(settings.torch_threads, count)
    return ProcessEncoder.start_many(
        count, settings.model, threads=threads, wide_threads=wide_threads(settings.torch_threads)
    )
