"""The document filter over HTTP: POST /api/ask, GET /api/search and GET /api/trials, one error shape."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from conftest import DOC_000, DOC_003
from fastapi.testclient import TestClient

HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message", "detail"}
    assert body["error"]["status"] == response.status_code
    return body["error"]  # type: ignore[no-any-return]


def test_ask_within_a_document(client: TestClient) -> None:
    r = client.post("/api/ask", json={"question": HEADLINE, "top_k": 6, "documents": [DOC_003]})
    assert r.status_code == 200
    body = r.json()
    assert len(body["passages"]) == 6 and {p["doc_id"] for p in body["passages"]} == {DOC_003}
    assert all(s["doc_id"] == DOC_003 for s in body["sentences"])
    assert all(t["doc_id"] == DOC_003 for t in body["trials"])
    assert body["reading"]["documents"] == [DOC_003]
    follow = client.post(
        "/api/ask", json={"question": "What about nivolumab?", "conversation_id": body["conversation_id"]}
    ).json()
    assert follow["reading"]["documents"] == [DOC_003]
    assert {p["doc_id"] for p in follow["passages"]} == {DOC_003}


def test_unknown_document_is_a_404_naming_it(client: TestClient) -> None:
    r = client.post("/api/ask", json={"question": HEADLINE, "documents": [DOC_000, "not-a-paper"]})
    err = _error(r)
    assert r.status_code == 404 and err["code"] == "unknown_document"
    assert "'not-a-paper'" in err["message"] and err["detail"] == {"unknown": ["not-a-paper"]}
    for url in ("/api/search?q=pembrolizumab&documents=nope", "/api/trials?documents=nope,also"):
        r = client.get(url)
        assert r.status_code == 404 and _error(r)["detail"]["unknown"][0] == "nope"
    assert client.post("/api/ask", json={"question": HEADLINE, "documents": [""]}).status_code == 422


def test_search_takes_repeated_or_comma_separated_ids(client: TestClient) -> None:
    one = client.get("/api/search", params={"q": "TLR9 agonist pembrolizumab", "k": 7, "documents": DOC_003})
    assert one.status_code == 200
    assert len(one.json()["passages"]) == 7 and {p["doc_id"] for p in one.json()["passages"]} == {DOC_003}
    both = [
        client.get(
            "/api/search", params=[("q", "macrophages"), ("documents", DOC_000), ("documents", DOC_003)]
        ),
        client.get("/api/search", params={"q": "macrophages", "documents": f"{DOC_000},{DOC_003}"}),
    ]
    assert both[0].json() == both[1].json()


def test_trials_within_documents(client: TestClient) -> None:
    everything = client.get("/api/trials").json()["trials"]
    by_doc = {
        d: client.get("/api/trials", params={"documents": d}).json()["trials"] for d in (DOC_000, DOC_003)
    }
    assert by_doc[DOC_000] and len(by_doc[DOC_000]) <= len(everything)
    for doc_id, trials in by_doc.items():
        assert all(t["doc_id"] == doc_id and {e["doc_id"] for e in t["evidence"]} == {doc_id} for t in trials)
    assert {t["id"] for t in everything} == {t["id"] for ts in by_doc.values() for t in ts}
    text = client.get("/api/trials", params={"documents": DOC_000, "format": "csv"}).text
    assert len(list(csv.reader(io.StringIO(text)))) == len(by_doc[DOC_000]) + 1
    drug = client.get("/api/trials", params={"drug": "pembrolizumab", "documents": DOC_000}).json()
    assert all("pembrolizumab" in t["interventions"] for t in drug["trials"])


def test_the_ask_page_filters_and_shows_the_filter(client: TestClient) -> None:
    page = client.get("/", params=[("q", HEADLINE), ("documents", ""), ("documents", DOC_003)])
    assert page.status_code == 200
    html = page.text
    assert f'value="{DOC_003}" checked' in html and f'value="{DOC_000}" checked' not in html
    assert 'class="doc-scope muted">Only from:' in html
    assert f"documents={DOC_003}" in html  # permalink and JSON twin carry the filter
    twin = client.get("/", params={"q": HEADLINE, "documents": DOC_003, "format": "json"}).json()
    assert {p["doc_id"] for p in twin["passages"]} == {DOC_003}
    bad = client.get("/", params={"q": HEADLINE, "documents": "nope"})
    assert bad.status_code == 400 and "unknown document id &#39;nope&#39;" in bad.text
