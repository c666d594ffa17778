"""The JSON API: shapes notebook users depend on, and one error shape for every bad request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import DOC_000, DOC_003
from fastapi.testclient import TestClient

from qa.services import Services

HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message", "detail"}
    assert body["error"]["status"] == response.status_code and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def test_ask_returns_cited_sentences_with_offsets(client: TestClient, services: Services) -> None:
    r = client.post("/api/ask", json={"question": HEADLINE})
    assert r.status_code == 200
    body = r.json()
    for key in ("conversation_id", "question", "answer", "abstained", "passages", "trials", "sentences"):
        assert key in body
    assert body["abstained"] is False and body["question"] == HEADLINE
    assert "[1]" in body["answer"]
    for p in body["passages"]:
        assert set(p) >= {"id", "doc_id", "title", "section", "text", "start", "end", "score", "url"}
        assert services.index.document(p["doc_id"]).text[p["start"] : p["end"]] == p["text"]
        assert p["url"].endswith(f"/documents/{p['doc_id']}#p-{p['id']}")
    assert body["passages"][0]["section"][-1] == "2.2.3 Enhancing Antigen Presentation"
    for s in body["sentences"]:
        passage = body["passages"][s["marker"] - 1]
        assert passage["start"] <= s["start"] < s["end"] <= passage["end"]
        assert services.index.document(s["doc_id"]).text[s["start"] : s["end"]] == s["text"]
        assert f"{s['text']} [{s['marker']}]" in body["answer"]
        assert {"start": s["start"], "end": s["end"]} in passage["highlights"]
    assert "Server-Timing" in r.headers and "retrieval;dur=" in r.headers["Server-Timing"]


def test_ask_abstains_on_questions_outside_the_corpus(client: TestClient) -> None:
    body = client.post("/api/ask", json={"question": "What is the half-life of warfarin?"}).json()
    assert body["abstained"] is True
    assert body["reason"] in ("no_evidence", "unknown_entity", "value_not_reported")
    assert body["answer"].startswith("The indexed documents") and "[" not in body["answer"]  # nothing cited
    assert body["passages"] and body["sentences"] == []  # related passages, nothing cited as an answer
    assert body["reason_note"].startswith("Not answered: ")  # why, said for a reader


def test_ask_says_its_trial_filter_in_words_and_no_reason_when_it_answers(client: TestClient) -> None:
    body = client.post("/api/ask", json={"question": HEADLINE}).json()
    assert body["reason_note"] is None and body["reading"]["filters"]
    summary = body["reading"]["filter_summary"]
    assert summary.startswith("interventions: ") and "pembrolizumab" in summary, summary
    plain = client.post("/api/ask", json={"question": "How do M2 macrophages promote tumor progression?"})
    assert plain.json()["reading"]["filter_summary"] is None  # not a question about trials


def test_top_k_controls_passage_count(client: TestClient) -> None:
    body = client.post(
        "/api/ask", json={"question": "How do M2 macrophages promote tumor progression?", "top_k": 2}
    ).json()
    assert len(body["passages"]) >= 1 and len([p for p in body["passages"] if p["score"] > 0]) <= 2


def test_search_documents_and_passages(client: TestClient) -> None:
    r = client.get("/api/search", params={"q": "TLR9 agonist pembrolizumab", "k": 3})
    assert r.status_code == 200 and len(r.json()["passages"]) == 3
    first = r.json()["passages"][0]
    assert client.get(f"/api/passages/{first['id']}").json()["text"] == first["text"]
    docs = {d["id"]: d for d in client.get("/api/documents").json()}
    assert set(docs) == {DOC_000, DOC_003}
    assert docs[DOC_003]["doi"] == "10.3389/fonc.2023.1210245" and docs[DOC_000]["title"] is None
    doc = client.get(f"/api/documents/{DOC_003}").json()
    assert [s["title"] for s in doc["sections"]][:3] == [
        "Abstract",
        "Introduction",
        "Mechanisms of immune resistance",
    ]
    assert doc["text"][doc["sections"][1]["start"] :].startswith("Introduction")


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["passages"] > 100


def test_readyz_is_503_before_the_index_loads(settings) -> None:
    from fastapi.testclient import TestClient

    from qa.api.app import create_app

    app = create_app(settings)  # lifespan not started: nothing loaded
    r = TestClient(app).get("/readyz")
    assert r.status_code == 503 and _error(r)["code"] == "index_missing"


@pytest.mark.parametrize(
    ("method", "url", "payload", "status"),
    [
        ("post", "/api/ask", {"question": ""}, 422),
        ("post", "/api/ask", {"question": "   "}, 400),
        ("post", "/api/ask", {"question": "x" * 1001}, 422),
        ("post", "/api/ask", {"question": 5}, 422),
        ("post", "/api/ask", {"question": ["a"]}, 422),
        ("post", "/api/ask", {}, 422),
        ("post", "/api/ask", {"question": "hi", "top_k": 0}, 422),
        ("post", "/api/ask", {"question": "hi", "top_k": 21}, 422),
        ("post", "/api/ask", {"question": "hi", "top_k": "many"}, 422),
        ("post", "/api/ask", {"question": "hi", "extra": 1}, 422),
        ("post", "/api/ask", {"question": "hi", "conversation_id": "unknown-id"}, 404),
        ("post", "/api/ask", {"question": "hi", "conversation_id": "bad id!"}, 422),
        ("post", "/api/ask", {"question": "a\x00b"}, 400),
        ("get", "/api/search?q=", None, 422),
        ("get", "/api/search?q=x&k=0", None, 422),
        ("get", "/api/search?q=x&k=51", None, 422),
        ("get", "/api/search?q=x&k=abc", None, 422),
        ("get", "/api/documents/no-such-doc", None, 404),
        ("get", "/api/passages/no-such-passage", None, 404),
        ("get", "/api/passages/000_d6059957f8831505:0-999999", None, 404),
        ("get", "/api/nowhere", None, 404),
        ("delete", "/api/ask", None, 405),
    ],
)
def test_bad_requests_get_one_error_shape(client: TestClient, method, url, payload: object, status) -> None:
    r = getattr(client, method)(url, json=payload) if payload is not None else getattr(client, method)(url)
    assert r.status_code == status
    _error(r)


def test_malformed_json_is_a_4xx(client: TestClient) -> None:
    r = client.post("/api/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    _error(r)


@pytest.mark.parametrize(
    "payload",
    [
        {"question": HEADLINE},
        {"question": "  What   about\tnivolumab? ", "top_k": "3"},
        {"question": "hi", "top_k": 2.0},
        {"question": "hi", "conversation_id": None},
        {"question": ""},
        {"question": "hi", "top_k": True},
        {"question": "hi", "top_k": 21},
        {"question": "hi", "extra": 1},
        {"question": "hi", "conversation_id": "unknown-id"},
        {"question": "a\x00b"},
        ["question"],
        "question",
    ],
)
def test_every_json_body_gets_an_answer_or_the_error_shape(client: TestClient, payload: object) -> None:
    """/api/ask is a plain FastAPI route: whatever JSON arrives, under any JSON media type, it answers or
    refuses in the app's one error shape, the same way for both."""
    import json

    raw = json.dumps(payload).encode()
    plain = client.post("/api/ask", content=raw, headers={"content-type": "application/json"})
    other = client.post("/api/ask", content=raw, headers={"content-type": "application/problem+json"})
    assert plain.status_code == other.status_code
    a, b = plain.json(), other.json()
    if plain.status_code == 200:
        a.pop("conversation_id"), b.pop("conversation_id")
    else:
        assert 400 <= plain.status_code < 500
        _error(plain)
    assert a == b


def test_openapi_documents_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {
        "/api/ask",
        "/api/search",
        "/api/documents",
        "/api/documents/{doc_id}",
        "/api/passages/{passage_id}",
    } <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_openapi_documents_the_trials_of_an_answer(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["AskResponse"]["properties"]["trials"]["items"] == {
        "$ref": "#/components/schemas/TrialOut"
    }
    assert schemas["TrialList"]["properties"]["trials"]["items"] == {"$ref": "#/components/schemas/TrialOut"}
    trial = schemas["TrialOut"]["properties"]
    assert trial["outcomes"]["items"] == {"$ref": "#/components/schemas/OutcomeOut"}
    assert trial["evidence"]["items"] == {"$ref": "#/components/schemas/EvidenceOut"}


def test_answer_trials_keep_the_record_field_names(client: TestClient, services: Services) -> None:
    """Notebook users read these names: /api/ask states each trial exactly as its record (Trial.to_dict)."""
    trials = client.post("/api/ask", json={"question": HEADLINE}).json()["trials"]
    assert trials
    assert services.facts is not None
    for t in trials:
        assert t == services.facts.trial(t["id"]).to_dict()
