"""Documents added, replaced and removed through the API while serving: searchable without a restart, the
same bytes once, hostile uploads refused in the error shape with the index unchanged, the key required."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa.api.app import create_app
from qa.encoding import Embedder
from qa.index.build import build_index, current_path
from qa.services import Services
from qa.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "readers"))
from paperset import PAPERS, require_papers  # noqa: E402
from test_safety import BILLION_LAUGHS, _pdf, external_entity  # noqa: E402

KEY = "library-test-key-0123456789abcdef"
AUTH = {"X-API-Key": KEY}
SEED = {
    "ipilimumab.md": "# Results\n\nIpilimumab, an anti-CTLA-4 antibody, prolonged overall survival in metastatic "
    "melanoma.\n\n# Safety\n\nColitis and hypophysitis were the immune-related adverse events seen most.\n",
    "atezolizumab.md": "# Background\n\nAtezolizumab binds PD-L1 and blocks its interaction with PD-1.\n\n"
    "# Results\n\nIn urothelial carcinoma, responses were more frequent when PD-L1 was expressed on immune "
    "cells.\n",
}
PAPER = "cii2015-killer-t-dc-lung-phase3.xml"  # the smallest real paper of shared/papers


@pytest.fixture(scope="module")
def library(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[Settings, TestClient]]:
    root = tmp_path_factory.mktemp("library")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in SEED.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings(
        corpus_dir=corpus, index_dir=root / "index", api_key=KEY, rate_limit_per_minute=0, log_level="WARNING"
    )
    build_index(settings, embedder)
    services = Services.start(settings, embedder=embedder)
    with TestClient(create_app(settings, services=services)) as client:
        yield settings, client
    services.close()


def _paper() -> Path:
    return require_papers() / PAPER


def _ids(client: TestClient) -> set[str]:
    return {d["id"] for d in client.get("/api/documents").json()}


def _upload(client: TestClient, name: str, data: bytes, headers: dict[str, str] | None = None) -> object:
    return client.post(
        "/api/documents", files={"file": (name, data)}, headers=AUTH if headers is None else headers
    )


def test_an_added_paper_is_searchable_without_a_restart_and_the_same_bytes_make_one_document(
    library: tuple[Settings, TestClient],
) -> None:
    settings, client = library
    data = _paper().read_bytes()
    assert _upload(client, PAPER, data, headers={}).status_code == 401
    assert _upload(client, PAPER, data, headers={"X-API-Key": "wrong"}).status_code == 401

    added = client.post("/api/documents", files={"file": (PAPER, data)}, headers=AUTH)
    assert added.status_code == 201, added.text
    record = added.json()
    doc_id = Path(PAPER).stem
    assert record["id"] == doc_id and record["status"] == "added" and record["title"]
    change = record["change"]
    # Only the new paper's passages were embedded: the seed documents' vectors came from the current build.
    assert 0 < change["passages_embedded"] <= record["passages"]
    assert change["documents"] == len(SEED) + 1
    assert (Path(settings.corpus_dir) / PAPER).read_bytes() == data

    hits = client.get("/api/search", params={"q": record["title"], "k": 3}).json()["passages"]
    assert hits and hits[0]["doc_id"] == doc_id

    again = _upload(client, PAPER, data)
    renamed = _upload(client, "copy-of-the-same-paper.xml", data)
    assert again.status_code == 200 and again.json()["status"] == "exists" and again.json()["id"] == doc_id
    assert renamed.status_code == 200 and renamed.json()["id"] == doc_id
    assert again.json()["change"]["passages_embedded"] == 0
    assert len(client.get("/api/documents").json()) == len(SEED) + 1

    other = _upload(client, PAPER, data.replace(b"</article>", b"<!-- another version --></article>"))
    assert other.status_code == 409 and other.json()["error"]["code"] == "duplicate_document"

    assert client.delete(f"/api/documents/{doc_id}", headers={}).status_code == 401
    removed = client.delete(f"/api/documents/{doc_id}", headers=AUTH)
    assert removed.status_code == 204
    assert doc_id not in _ids(client) and not (Path(settings.corpus_dir) / PAPER).exists()
    hits = client.get("/api/search", params={"q": record["title"], "k": 3}).json()["passages"]
    assert all(h["doc_id"] != doc_id for h in hits)
    assert client.delete(f"/api/documents/{doc_id}", headers=AUTH).status_code == 404


def test_replace_keeps_the_id_and_embeds_only_what_changed(library: tuple[Settings, TestClient]) -> None:
    _, client = library
    doc_id = "atezolizumab"
    before = client.get(f"/api/documents/{doc_id}").json()
    text = (
        SEED["atezolizumab.md"]
        + "\n# Discussion\n\nAtezolizumab was later approved for small-cell lung cancer.\n"
    )
    replaced = client.put(f"/api/documents/{doc_id}", files={"file": ("new.md", text.encode())}, headers=AUTH)
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["id"] == doc_id and body["status"] == "replaced"
    assert body["characters"] > before["characters"]
    assert 0 < body["change"]["passages_embedded"] < body["change"]["passages"]
    assert "small-cell" in client.get(f"/api/documents/{doc_id}").json()["text"]
    missing = client.put("/api/documents/nope", files={"file": ("nope.md", b"# A\n\ntext\n")}, headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_hostile_and_broken_uploads_get_4xx_in_the_error_shape_and_change_nothing(
    library: tuple[Settings, TestClient], tmp_path: Path
) -> None:
    settings, client = library
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    pdf_bytes = (require_papers() / "hindawi2010-heart-failure-rehab-focus-groups.pdf").read_bytes()
    uploads = {
        "bomb.xml": BILLION_LAUGHS.encode(),
        "xxe.xml": external_entity(secret).encode(),
        "corrupt.pdf": pdf_bytes[: len(pdf_bytes) // 3],
        "locked.pdf": _pdf(tmp_path / "locked.pdf", text="Hidden words", encrypt="pw").read_bytes(),
        "../escape.md": b"# Escape\n\nA file that wants to live outside the corpus folder.\n",
        "huge.txt": b"tumour " * int(settings.upload_max_mb * 1e6 / 7 + 1000),
        "script.sh": b"#!/bin/sh\necho hi\n",
    }
    served = os.readlink(current_path(settings.index_dir))
    corpus = sorted(p.name for p in Path(settings.corpus_dir).iterdir())
    ids = _ids(client)
    for name, data in uploads.items():
        started = time.perf_counter()
        response = _upload(client, name, data)
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
        error = response.json()["error"]
        assert (
            set(error) == {"status", "code", "message", "detail"} and error["status"] == response.status_code
        )
        assert "TOP-SECRET" not in response.text
        assert time.perf_counter() - started < 10, name
    assert os.readlink(current_path(settings.index_dir)) == served
    assert sorted(p.name for p in Path(settings.corpus_dir).iterdir()) == corpus
    assert _ids(client) == ids
    assert client.post("/api/ask", json={"question": "What does atezolizumab bind?"}).status_code == 200


def test_two_uploads_at_once_both_land(library: tuple[Settings, TestClient]) -> None:
    _, client = library
    docs = {
        "tils.md": b"# Results\n\nTumour-infiltrating lymphocytes expanded ex vivo induced regressions in melanoma.\n",
        "cart.md": b"# Results\n\nCD19-directed CAR T cells produced complete remissions in B-cell lymphoma.\n",
    }
    statuses: dict[str, int] = {}

    def send(name: str) -> None:
        statuses[name] = _upload(client, name, docs[name]).status_code  # type: ignore[attr-defined]

    threads = [threading.Thread(target=send, args=(n,)) for n in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert statuses == {"tils.md": 201, "cart.md": 201}
    assert {"tils", "cart"} <= _ids(client)


def test_without_a_key_on_the_server_changes_are_off(
    library: tuple[Settings, TestClient], embedder: Embedder
) -> None:
    settings, client = library
    services = client.app.state.services  # type: ignore[attr-defined]
    off = settings.model_copy(update={"api_key": ""})
    with TestClient(create_app(off, services=services)) as plain:
        response = _upload(plain, PAPER, _paper().read_bytes())
        deleted = plain.delete("/api/documents/ipilimumab", headers=AUTH)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert deleted.status_code == 403
    assert PAPERS.is_dir()


def test_the_python_client_adds_and_removes(library: tuple[Settings, TestClient], tmp_path: Path) -> None:
    from live_server import serve

    from qa.client import APIError, Client

    settings, client = library
    paper = tmp_path / "oncolytic.md"
    paper.write_text(
        "# Results\n\nTalimogene laherparepvec, an oncolytic herpes virus, raised durable response rates in "
        "unresectable melanoma.\n",
        encoding="utf-8",
    )
    with serve(create_app(settings, services=client.app.state.services)) as url, Client(url) as qa:  # type: ignore[attr-defined]
        with pytest.raises(APIError) as refused:
            qa.add_document(paper)
        record = qa.add_document(paper, api_key=KEY)
        same = qa.add_document(paper, api_key=KEY)
        found = qa.search("oncolytic herpes virus in melanoma", k=1)
        qa.remove_document(record.id, api_key=KEY)
        left = {d.id for d in qa.documents()}
    assert refused.value.status == 401
    assert record.id == "oncolytic" and record.status == "added" and record.change.passages_embedded >= 1
    assert same.status == "exists" and same.change.passages_embedded == 0
    assert found[0].doc_id == "oncolytic" and "oncolytic" not in left
