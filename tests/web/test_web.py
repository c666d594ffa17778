"""The HTML pages over plain HTTP: the no-JavaScript path, JSON twins, escaping, and the CSP-ready markup."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from qa.services import Services

HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"
DOC = "000_d6059957f8831505"


def alternate(page: str) -> str:
    m = re.search(r'<link rel="alternate" type="application/json" href="([^"]+)">', page)
    assert m, "page has no JSON twin"
    return html.unescape(m.group(1))


def test_question_answered_without_javascript(client: TestClient) -> None:
    r = client.get("/", params={"q": HEADLINE})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    twin = client.get(alternate(page)).json()  # the same AskResponse as POST /api/ask
    assert twin["question"] == HEADLINE and len(twin["trials"]) == 4
    for sentence in twin["sentences"]:
        assert html.escape(sentence["text"], quote=False) in page
    assert page.count("<tr>") == 1 + 4  # header row and the four trials
    assert "I-SPY2" in page and "NCT02680184" in page
    cid = re.search(r'name="cid" value="([0-9a-f]+)"', page)
    assert cid, "the follow-up form carries the conversation id"

    follow = client.get("/", params={"q": "Which of them are in melanoma?", "cid": cid.group(1)}).text
    assert "Earlier in this conversation" in follow and html.escape(HEADLINE) in follow
    assert "Read as:" in follow


def test_expired_conversation_starts_a_new_one(client: TestClient) -> None:
    r = client.get("/", params={"q": HEADLINE, "cid": "nosuchconversation"})
    assert r.status_code == 200 and "starts a new one" in r.text


def test_bad_question_is_shown_on_the_page(client: TestClient) -> None:
    r = client.get("/", params={"q": "   "})
    assert r.status_code == 400 and 'role="alert"' in r.text and "question is empty" in r.text


def test_question_html_is_escaped(client: TestClient) -> None:
    q = "<script>alert(1)</script> which trials use SD-101?"
    for path in ("/", "/embed"):
        page = client.get(path, params={"q": q}).text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt; which trials use SD-101?" in page


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=" + quote(HEADLINE),
        "/documents",
        f"/documents/{DOC}",
        "/trials",
        "/trials?drug_class=TLR9+agonist&drug=pembrolizumab",
        "/embed",
        "/embed?topic=melanoma",
        "/about/embed",
    ],
)
def test_pages_are_csp_ready_and_offline(client: TestClient, path: str) -> None:
    page = client.get(path).text
    assert not re.search(r"<script(?![^>]*\ssrc=)", page), "inline script"
    assert not re.search(r"\sstyle=", page), "inline style"
    assert not re.search(r"\son[a-z]+=", page), "inline event handler"
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
    assert '<main id="main"' in page and "<label" in page or path.startswith("/documents")
    for asset in re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', page):
        assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize(
    ("path", "twin"),
    [
        ("/", "/api/documents"),
        ("/documents", "/api/documents"),
        (f"/documents/{DOC}", f"/api/documents/{DOC}"),
        ("/trials?drug=pembrolizumab&phase=3", "/api/trials?drug=pembrolizumab&phase=3"),
        ("/embed?topic=melanoma", "/api/search?q=melanoma&k=3"),
    ],
)
def test_every_page_has_its_json_twin(client: TestClient, path: str, twin: str) -> None:
    page = client.get(path).text
    assert alternate(page) == twin
    r = client.get(twin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"drug_class": "TLR9 agonist", "drug": "pembrolizumab"},
        {"condition": "NSCLC"},
        {"target": "LAG-3"},
    ],
)
def test_trials_page_shows_what_the_api_returns(client: TestClient, params: dict[str, str]) -> None:
    api = client.get("/api/trials", params=params).json()
    page = client.get("/trials", params=params).text
    assert f"{api['count']} trial" in page
    assert page.count("<tr>") == api["count"] + (1 if api["count"] else 0)
    for t in api["trials"]:
        assert f"#p-{t['passage_id']}" in page


def test_trials_page_shows_a_page_of_a_long_list_and_the_count(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.web.views import trials as trials_view

    everything = client.get("/api/trials").json()
    monkeypatch.setattr(trials_view, "PAGE", 5)
    page = client.get("/trials").text
    assert f"{everything['count']} trials (the first 5 shown" in page and page.count("<tr>") == 6
    for t in everything["trials"][:5]:
        assert f"#p-{t['passage_id']}" in page


def test_trials_page_unknown_filter_is_explained(client: TestClient) -> None:
    r = client.get("/trials", params={"drug": "notadrugatall"})
    assert r.status_code == 400 and 'role="alert"' in r.text


def test_document_page_anchors_passages_and_highlights_a_sentence(
    client: TestClient, services: Services
) -> None:
    doc = services.index.document(DOC)
    sentence = re.search(r"A trial that evaluated the efficacy of TLR9 agonist SD-101[^.]+\.", doc.text)
    assert sentence
    r = client.get(f"/documents/{DOC}", params={"hl": f"{sentence.start()}-{sentence.end()}"})
    page = r.text
    passages = [p for p in services.index.passages if p.doc_id == DOC]
    assert all(f'id="p-{html.escape(p.id)}"' in page for p in passages)
    mark = re.search(r'<mark id="hl">(.*?)</mark>', page, re.S)
    assert mark and html.unescape(mark.group(1)) == sentence.group(0)
    assert all(f'href="#s-{s.id}"' in page for s in doc.sections)  # the outline
    # bad spans are ignored rather than failing the page
    assert client.get(f"/documents/{DOC}", params={"hl": "99999999-1"}).status_code == 200


def test_merged_passage_link_is_anchored_on_the_server(client: TestClient, services: Services) -> None:
    a, b = [p for p in services.index.passages if p.doc_id == DOC][10:12]
    merged = f"{DOC}:{a.start}-{b.end}"
    page = client.get(f"/documents/{DOC}", params={"p": merged}).text
    assert f'id="p-{merged}"' in page and "in-passage" in page


def test_unknown_document_is_an_html_404(client: TestClient) -> None:
    r = client.get("/documents/nope")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


def test_widget_links_open_the_full_page_in_a_new_tab(client: TestClient) -> None:
    page = client.get("/embed", params={"q": HEADLINE}).text
    links = re.findall(r"<a [^>]*href=\"/(?:documents|\?)[^>]*>", page)
    assert links and all('target="_blank" rel="noopener"' in a for a in links)


def test_embed_help_gives_both_snippets(client: TestClient) -> None:
    page = html.unescape(client.get("/about/embed").text)
    assert '<script src="http://testserver/static/embed.js"' in page
    assert '<iframe src="http://testserver/embed?topic=melanoma"' in page
    assert "QA_FRAME_ANCESTORS" in page
