"""A real uvicorn server on a free 127.0.0.1 port, in a background thread, for tests that need a live URL.

Its ``live_url`` fixture is every test's (a plugin of tests/conftest.py, so its asserts are rewritten), or
call ``serve(app)`` directly for any ASGI app; ``qa_serve(env, log)`` runs the real `qa serve` command instead,
in a process of its own.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serve(app: Any, *, start_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (no trailing slash)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the port is bound before uvicorn starts, so no other process can take it
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the live test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def qa_serve(env: dict[str, str], log: Path, *, start_timeout: float = 180.0) -> Iterator[str]:
    """`qa serve` (settings from ``env``) on a free 127.0.0.1 port, its output in ``log``; yields its base URL
    once /readyz answers, and stops it when the block ends, also on failure."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("wb") as out:
        command = [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                state = f"exited {process.returncode}" if process.returncode is not None else "was not ready"
                pytest.fail(f"`qa serve` at {url} {state}:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        process.kill()  # nothing once it has exited
        process.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def live_url(services: Any) -> Iterator[str]:
    """Base URL of the full app over the session's real index and model."""
    from qa.api.app import create_app

    with serve(create_app(services=services)) as url:
        yield url
