"""Every server process serves the build ``index/current`` points at.

A change lands in one process only: the worker whose request made it (POST /api/documents), a `qa add` or
`qa index` next to the server, or the worker a POST /api/admin/reload reached. Each process therefore
watches the pointer (``QA_INDEX_POLL_SECONDS``) on a thread of its own and, when it moves, loads the new
build beside the one serving and swaps the one reference requests read; requests already running finish on
the build they started with, so none fails. A build that cannot be loaded is logged once and left; the
previous one keeps serving until the pointer moves again.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from fastapi import FastAPI

from qa.errors import QAError
from qa.index.build import current_path
from qa.services import Services

log = logging.getLogger(__name__)


def serve_current(app: FastAPI, *, check_corpus: bool = True) -> tuple[Path, Services]:
    """Load the build now current on disk and swap it in, unless it is the one served already; the caller
    holds ``app.state.reload_lock``. Returns the build served before and the services serving now
    (QAError, with the previous build still serving, when the new one cannot be loaded)."""
    current: Services = app.state.services
    previous = current.index.path
    if current_path(Path(current.settings.index_dir)).resolve() == previous:
        return previous, current
    fresh = current.reloaded(check_corpus=check_corpus)
    app.state.services = fresh  # the swap: one reference, read once per request
    return previous, fresh


class BuildFollower:
    """The thread that keeps one process on the current build (see the module docstring)."""

    def __init__(self, app: FastAPI, every_seconds: float) -> None:
        self.app = app
        self.every = every_seconds
        self._stop = threading.Event()
        self._refused: Path | None = None  # a build that failed to load: not tried again
        self._thread = threading.Thread(target=self._run, name="build-follower", daemon=True)

    def start(self) -> None:
        if self.every > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.check()
            except Exception:  # never let the thread die: the next poll tries again
                log.exception("checking for a new build failed")

    def check(self) -> Path | None:
        """Swap in the current build if another process moved the pointer; the build now served, or None."""
        services: Services | None = self.app.state.services
        if services is None:
            return None
        try:
            target = current_path(Path(services.settings.index_dir)).resolve(strict=True)
        except OSError:
            return None  # no index, or the pointer between two renames
        if target == services.index.path or target == self._refused:
            return None
        lock: threading.Lock = self.app.state.reload_lock
        if not lock.acquire(blocking=False):
            return None  # a change or a reload in this process is swapping now; look again next time
        try:
            # The pointer only moves to a complete build, under the build lock, with its corpus files in
            # place; the manifest and checksums are still verified by the load.
            previous, fresh = serve_current(self.app, check_corpus=False)
        except QAError as exc:
            self._refused = target
            log.warning(
                "kept serving %s: the new build %s did not load: %s",
                services.index.path.name,
                target.name,
                exc.message,
            )
            return None
        finally:
            lock.release()
        if fresh.index.path != previous:
            log.info("serving %s (the build another process made current)", fresh.index.path.name)
        return fresh.index.path
