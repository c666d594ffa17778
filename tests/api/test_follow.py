"""Every server process serves the current build: a change one worker makes (or `qa add` beside the server)
is picked up by the others without a reload call; a build that does not load leaves the old one serving.

Two apps over one index folder stand for two uvicorn workers: each has its own services and its own
follower thread, as each worker process does.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import small_index
from fastapi.testclient import TestClient
from readers.paperset import require_papers

from qa.api.app import create_app
from qa.encoding import Embedder
from qa.index.build import build_index, current_path
from qa.library.changes import remove_documents
from qa.services import Services
from qa.settings import Settings

KEY = "follow-test-key-0123456789abcdef"
AUTH = {"X-API-Key": KEY}
SEED = {
    "nivolumab.md": "# Results\n\nNivolumab, an anti-PD-1 antibody, improved overall survival in renal cell "
    "carcinoma.\n",
    "ipilimumab.md": "# Safety\n\nColitis was the immune-related adverse event seen most with ipilimumab.\n",
}
PAPER = "cii2015-killer-t-dc-lung-phase3.xml"
POLL = 0.2


@pytest.fixture
def workers(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[Settings, TestClient, TestClient]]:
    settings = small_index(tmp_path, SEED, embedder, api_key=KEY, index_poll_seconds=POLL)
    first, second = (Services.start(settings, embedder=embedder) for _ in range(2))
    try:
        with (
            TestClient(create_app(settings, services=first)) as a,
            TestClient(create_app(settings, services=second)) as b,
        ):
            yield settings, a, b
    finally:
        first.close()
        second.close()


def _ids(client: TestClient) -> set[str]:
    return {d["id"] for d in client.get("/api/documents").json()}


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_change_made_by_one_worker_is_served_by_the_other(
    workers: tuple[Settings, TestClient, TestClient], embedder: Embedder
) -> None:
    settings, a, b = workers
    doc_id = Path(PAPER).stem
    paper = (require_papers() / PAPER).read_bytes()
    added = a.post("/api/documents", files={"file": (PAPER, paper)}, headers=AUTH)
    assert added.status_code == 201, added.text
    assert doc_id in _ids(a)  # the worker that made the change serves it when it answers
    assert _within(10 * POLL + 5, lambda: doc_id in _ids(b)), "the other worker never served the change"
    hits = b.get("/api/search", params={"q": added.json()["title"], "k": 3}).json()["passages"]
    assert hits and hits[0]["doc_id"] == doc_id
    reload = b.post("/api/admin/reload", headers=AUTH)
    assert reload.status_code == 200 and reload.json()["status"] == "unchanged"
    assert reload.json()["current"] == current_path(Path(settings.index_dir)).resolve().name

    # A change from outside both (what `qa add` / `qa remove` beside the server does) reaches both.
    remove_documents(settings, embedder, [doc_id])
    for worker in (a, b):
        assert _within(10 * POLL + 5, lambda w=worker: doc_id not in _ids(w))  # type: ignore[misc]


def test_a_build_that_does_not_load_leaves_each_worker_on_the_one_it_serves(
    workers: tuple[Settings, TestClient, TestClient], embedder: Embedder
) -> None:
    settings, a, b = workers
    served = a.get("/readyz").json()
    (Path(settings.corpus_dir) / "pembrolizumab.md").write_text(
        "# Results\n\nPembrolizumab produced durable responses in PD-L1-positive lung cancer.\n",
        encoding="utf-8",
    )
    locks = [w.app.state.reload_lock for w in (a, b)]  # type: ignore[attr-defined]
    with locks[0], locks[1]:  # no follower swaps between the build and the damage
        new = build_index(settings, embedder)  # `qa index` beside the server ...
        data = (new / "store.sqlite3").read_bytes()
        (new / "store.sqlite3").write_bytes(data[: len(data) // 2])  # ... and then damaged on disk
    time.sleep(10 * POLL)  # every follower has tried it by now
    for worker in (a, b):
        assert worker.get("/readyz").json() == served
        asked = worker.post("/api/ask", json={"question": "Did nivolumab improve overall survival?"})
        assert asked.status_code == 200 and asked.json()["passages"][0]["doc_id"] == "nivolumab"
    refused = b.post("/api/admin/reload", headers=AUTH)
    assert refused.status_code == 409 and "store.sqlite3" in refused.json()["error"]["message"]
    shutil.rmtree(new)
