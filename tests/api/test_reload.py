"""Index safety while serving: a rebuild is swapped in under load without a failed request; a corrupt or
crashed build is refused and the previous index keeps answering."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, small_index
from live_server import serve

import qa.index.build as build_module
from qa.api.app import create_app
from qa.encoding import Embedder
from qa.index.build import build_index, current_path
from qa.services import Services
from qa.settings import Settings

KEY = "reload-test-key-0123456789abcdef"
DOCS = {
    "a.md": "# Results\n\nThe objective response rate was 40% with pembrolizumab in advanced melanoma.\n\n"
    "# Safety\n\nGrade 3 immune-related adverse events occurred in 12% of patients receiving pembrolizumab.\n",
    "b.md": "# Background\n\nNivolumab blocks PD-1 on T cells and restores anti-tumour immunity.\n\n"
    "# Results\n\nIn renal cell carcinoma, nivolumab improved overall survival over everolimus.\n",
}
NEW_DOC = (
    "# Results\n\nVidutolimod, a TLR9 agonist packaged in a virus-like particle, was combined with "
    "pembrolizumab in PD-1-refractory melanoma and produced durable responses.\n"
)
QUESTIONS = [
    "What was the objective response rate with pembrolizumab in melanoma?",
    "Does nivolumab improve survival in renal cell carcinoma?",
    "Which immune-related adverse events occurred with pembrolizumab?",
    "How does nivolumab restore anti-tumour immunity?",
]


@pytest.fixture
def tiny(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[Settings, Services]]:
    # These tests swap by POST /api/admin/reload; tests/api/test_follow.py has the processes do it by themselves.
    settings = small_index(tmp_path, DOCS, embedder, api_key=KEY, index_poll_seconds=0)
    services = Services.start(settings, embedder=embedder)
    yield settings, services
    services.close()


class Hammer:
    """Client threads asking questions in a loop until stopped; every status and failure is kept."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            n = 0
            while not self.stop.is_set() and n < 100_000:  # bounded even if never stopped
                question = f"{QUESTIONS[(i + n) % len(QUESTIONS)]} ({i}-{n})"
                n += 1
                try:
                    response = http.post("/api/ask", json={"question": question})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.statuses.append(response.status_code)
                if response.status_code != 200:
                    self.failures.append(response.text[:300])

    def __enter__(self) -> Hammer:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)


def _reload(url: str) -> httpx.Response:
    return httpx.post(f"{url}/api/admin/reload", headers={"X-API-Key": KEY}, timeout=300)


@pytest.mark.slow
def test_rebuild_and_reload_under_load_fail_no_request(tiny: tuple[Settings, Services]) -> None:
    settings, services = tiny
    before = os.readlink(current_path(settings.index_dir))
    (Path(settings.corpus_dir) / "c.md").write_text(NEW_DOC, encoding="utf-8")
    with serve(create_app(settings, services=services)) as url, Hammer(url) as hammer:
        # The rebuild runs as `qa index` does in production: another process, the server still answering.
        rebuilt = subprocess.run(
            [sys.executable, "-m", "qa.cli", "index", "--quiet", "--index-dir", str(settings.index_dir)],
            env={**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "HF_HUB_OFFLINE": "1"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
        assert os.readlink(current_path(settings.index_dir)) != before
        asked_before_swap = len(hammer.statuses)
        reloaded = _reload(url)
        assert reloaded.status_code == 200, reloaded.text
        while len(hammer.statuses) < asked_before_swap + 20 and not hammer.failures:
            hammer.stop.wait(0.05)  # keep asking on the new index for a while
        hammer.stop.set()
        ready = httpx.get(f"{url}/readyz").json()
        answer = httpx.post(
            f"{url}/api/ask", json={"question": "Which TLR9 agonist was combined with pembrolizumab?"}
        )
    assert hammer.failures == [] and set(hammer.statuses) == {200}
    assert asked_before_swap > 0 and len(hammer.statuses) >= asked_before_swap + 20
    body = reloaded.json()
    assert body["status"] == "reloaded" and body["previous"] != body["current"] and body["documents"] == 3
    assert ready["documents"] == 3
    assert "Vidutolimod" in answer.json()["passages"][0]["text"]


def test_a_corrupt_new_build_is_refused_and_the_old_index_keeps_serving(
    tiny: tuple[Settings, Services], embedder: Embedder
) -> None:
    settings, services = tiny
    served = services.index.path
    (Path(settings.corpus_dir) / "c.md").write_text(NEW_DOC, encoding="utf-8")
    new = build_index(settings, embedder)
    data = (new / "store.sqlite3").read_bytes()
    (new / "store.sqlite3").write_bytes(data[: len(data) // 2])  # truncated on disk after the build
    with serve(create_app(settings, services=services)) as url:
        refused = _reload(url)
        still = httpx.post(f"{url}/api/ask", json={"question": QUESTIONS[0]}, timeout=60)
        ready = httpx.get(f"{url}/readyz").json()
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "reload_failed" and "store.sqlite3" in error["message"]
    assert "previous index" in error["message"]
    assert still.status_code == 200 and ready["documents"] == 2
    assert services.index.path == served


def test_a_build_that_dies_midway_leaves_the_previous_index_serving(
    tiny: tuple[Settings, Services], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, services = tiny
    before = os.readlink(current_path(settings.index_dir))

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("killed midway")  # after embedding, before the manifest and the swap

    monkeypatch.setattr(build_module, "BUILD_STEPS", [*build_module.BUILD_STEPS, crash])
    (Path(settings.corpus_dir) / "c.md").write_text(NEW_DOC, encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, embedder)
    assert os.readlink(current_path(settings.index_dir)) == before
    assert list((Path(settings.index_dir) / "builds").glob("*.partial"))  # the half-written build
    with serve(create_app(settings, services=services)) as url:
        reloaded = _reload(url)
        answer = httpx.post(f"{url}/api/ask", json={"question": QUESTIONS[1]}, timeout=60)
    assert reloaded.status_code == 200 and reloaded.json()["status"] == "unchanged"
    assert answer.status_code == 200 and answer.json()["abstained"] is False
