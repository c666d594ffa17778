"""The web UI in real headless Chromium: the chat thread, citations, follow-ups, the embedded widget, escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import pytest
from browser_fixtures import browser, live_server, page, serve_html, shot
from live_server import serve

from qa.api.app import create_app
from qa.encoding import Embedder
from qa.index.build import build_index
from qa.services import Services
from qa.settings import Settings

pytestmark = pytest.mark.browser
FIXTURES = (browser, live_server, page)  # shared fixtures, defined in browser_fixtures.py
HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"


def ask_in_page(page: Any, question: str, nth: int = 1) -> Any:
    """Type a question into the form (the JavaScript path) and wait for answer number ``nth``."""
    page.fill("form.ask input[name=q]", question)
    page.press("form.ask input[name=q]", "Enter")
    answer = page.locator(".thread .answer").nth(nth - 1)
    answer.wait_for()
    return answer


def row_texts(answer: Any) -> list[str]:
    return [" | ".join(r.locator("td").all_inner_texts()) for r in answer.locator("table tbody tr").all()]


def test_headline_question_shows_the_four_trials(page: Any, live_server: str) -> None:
    page.goto(live_server + "/")
    shot(page, "ask-empty")
    answer = ask_in_page(page, HEADLINE)
    rows = row_texts(answer)
    shot(page, "ask-headline")
    assert len(rows) == 4, rows
    text = "\n".join(rows)
    assert any("SD-101" in r and "pembrolizumab" in r and "melanoma" in r and "78%" in r for r in rows), text
    assert any("I-SPY2" in r and "NCT01042379" in r for r in rows), text
    assert any("vidutolimod" in r and "1b" in r.lower() and "pembrolizumab" in r for r in rows), text
    assert any("NCT02680184" in r for r in rows), text
    assert not any("nivolumab" in r or "radiation" in r.lower() for r in rows), text

    # the server-rendered page (no JavaScript) shows the same table as the chat thread
    page.goto(live_server + "/?q=" + quote(HEADLINE))
    assert sorted(row_texts(page.locator(".answer"))) == sorted(rows)

    # each row links to its quote; the CSV download holds the same four trials
    csv = unquote(page.locator(".answer a[download='trials.csv']").get_attribute("href").split(",", 1)[1])
    assert len(csv.strip().splitlines()) == 5 and "NCT01042379" in csv and "NCT02680184" in csv
    assert all(
        "/documents/" in h
        for h in page.locator(".answer tbody td:first-child a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
    )

    # sortable: the Phase column puts phase 1b first, then the rows without a phase
    page.click(".answer th:nth-child(2) button.sort")
    assert page.locator(".answer th:nth-child(2)").get_attribute("aria-sort") == "ascending"
    assert "1b" in page.locator(".answer tbody tr").first.locator("td").nth(1).inner_text().lower()


def test_citation_lands_on_the_highlighted_sentence(page: Any, live_server: str) -> None:
    page.goto(live_server + "/")
    answer = ask_in_page(
        page, "What response rate did SD-101 with pembrolizumab achieve in advanced melanoma?"
    )
    sentence_marks = answer.locator(".card mark")
    assert sentence_marks.count() >= 1
    card = answer.locator(".card", has=page.locator("mark")).first
    card_id = card.get_attribute("id")
    answer.locator(f"a.cite[href='#{card_id}']").first.click()
    assert page.evaluate("location.hash") == f"#{card_id}"
    quoted = card.locator("mark").first.inner_text()

    card.locator("a.doc-link").click()
    page.wait_for_url(re.compile(r"/documents/.+hl=\d+-\d+#p-"))
    mark = page.locator("mark#hl")
    mark.wait_for()
    assert mark.inner_text() == quoted
    page.wait_for_function(
        "() => { const r = document.getElementById('hl').getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= innerHeight; }"
    )
    assert page.locator(".seg.in-passage").count() >= 1
    shot(page, "document-cited-sentence", full_page=False)


def test_bare_passage_link_scrolls_and_highlights(page: Any, live_server: str, services: Services) -> None:
    """The API's passage URLs (/documents/{id}#p-{passage id}, colon included) work on their own."""
    passage = next(p for p in services.index.passages if p.start > 20_000)
    page.goto(f"{live_server}/documents/{passage.doc_id}#p-{passage.id}")
    page.wait_for_function("() => document.querySelector('.seg.in-passage') !== null")
    first = page.locator(".seg.in-passage").first
    assert int(first.get_attribute("data-s")) >= passage.start
    assert (
        page.evaluate(
            "document.getElementById(decodeURIComponent(location.hash.slice(1))).getBoundingClientRect().top"
        )
        < 900
    )


def test_follow_up_in_the_same_thread(page: Any, live_server: str) -> None:
    page.goto(live_server + "/")
    ask_in_page(page, HEADLINE)
    cid = page.input_value("form.ask input[name=cid]")
    page.evaluate("window.__sameDocument = true")
    second = ask_in_page(page, "Which of them are in melanoma?", nth=2)
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert page.input_value("form.ask input[name=cid]") == cid
    assert page.locator(".thread .answer").count() == 2
    assert "Read as" in second.locator(".resolved").inner_text()
    rows = row_texts(second)
    assert 1 <= len(rows) < 4 and all("melanoma" in r for r in rows), rows
    assert "/?q=" in page.url  # the address bar holds a permalink to the latest answer
    shot(page, "ask-follow-up")


WIKI = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lab wiki</title></head>
<body><h1>Lab wiki: immunotherapy reading group</h1><p>Ask the papers below.</p>
<script src="{server}/static/embed.js" data-height="240" async></script>
<p id="after">Text after the widget.</p></body></html>"""


def frame_height(page: Any) -> float:
    return float(page.evaluate("document.querySelector('iframe.qa-embed').getBoundingClientRect().height"))


def test_document_filter_in_the_page(page: Any, live_server: str, services: Services) -> None:
    doc_id = "003_f380dd54a5265a4b"
    title = services.index.document(doc_id).meta.display_title
    page.goto(live_server + "/")
    page.click("details.doc-filter summary")
    page.check(f'form.ask input[name=documents][value="{doc_id}"]')
    answer = ask_in_page(page, HEADLINE)
    cards = answer.locator(".card h4 a.doc-link").all_inner_texts()
    assert cards and set(cards) == {title}, cards
    assert title in answer.locator(".doc-scope").inner_text()
    assert f"documents={doc_id}" in page.url  # the permalink keeps the filter
    follow = ask_in_page(page, "What about nivolumab?", nth=2)  # still ticked: the follow-up keeps it
    assert set(follow.locator(".card h4 a.doc-link").all_inner_texts()) == {title}
    page.goto(page.url)  # the permalink, rendered on the server, with the box ticked
    assert page.is_checked(f'form.ask input[name=documents][value="{doc_id}"]')
    assert set(page.locator(".answer .card h4 a.doc-link").all_inner_texts()) == {title}


def test_widget_embedded_in_another_origin(page: Any, live_server: str) -> None:
    with serve_html(WIKI.format(server=live_server)) as wiki:
        assert wiki.split(":")[-1] != live_server.split(":")[-1]
        page.goto(wiki)
        frame = page.frame_locator("iframe.qa-embed")
        frame.locator("form.ask input[name=q]").wait_for()
        page.wait_for_function("() => document.querySelector('iframe.qa-embed').style.height !== '240px'")
        before = frame_height(page)
        # a message from anyone but the widget is ignored
        page.evaluate("window.postMessage({type: 'qa-embed:height', height: 5}, '*')")
        page.wait_for_timeout(200)
        assert frame_height(page) == before

        frame.locator("form.ask input[name=q]").fill(HEADLINE)
        frame.locator("form.ask button[type=submit]").click()
        frame.locator(".answer table tbody tr").first.wait_for()
        assert frame.locator(".answer table tbody tr").count() == 4
        page.wait_for_function(
            f"() => document.querySelector('iframe.qa-embed').getBoundingClientRect().height > {before + 300}"
        )
        inner = frame.locator("body").evaluate("b => b.getBoundingClientRect().height")
        assert abs(frame_height(page) - inner) < 40  # sized to its content: no inner scroll bar
        links = frame.locator(".answer a[href^='/documents/']")
        assert links.count() > 0
        assert set(links.evaluate_all("ls => ls.map(a => a.target + ' ' + a.rel)")) == {"_blank noopener"}
        shot(page, "embed-in-wiki")


def test_widget_preset_question_and_topic(page: Any, live_server: str) -> None:
    page.set_viewport_size({"width": 420, "height": 700})
    page.goto(live_server + "/embed?topic=melanoma")
    assert page.locator(".starters li").count() == 3
    shot(page, "embed-topic")
    page.goto(live_server + "/embed?q=" + quote(HEADLINE))
    assert page.locator(".answer table tbody tr").count() == 4
    shot(page, "embed-preset")


def test_pages_at_phone_width(page: Any, live_server: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in [
        ("ask", "/?q=" + quote(HEADLINE)),
        ("trials", "/trials?drug_class=TLR9+agonist"),
        ("embed-help", "/about/embed"),
        ("documents", "/documents"),
    ]:
        page.goto(live_server + path)
        # nothing wider than the screen (tables reflow into one card per trial)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        shot(page, f"phone-{name}")
    page.goto(live_server + "/trials")
    shot(page, "trials", full_page=False)


def test_keyboard_reaches_the_question_box(page: Any, live_server: str) -> None:
    page.goto(live_server + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


@pytest.fixture(scope="module")
def html_server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[tuple[str, str]]:
    """A tiny index of one document full of HTML, served on its own port."""
    root = tmp_path_factory.mktemp("html-corpus")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "evil.md").write_text(
        "# Markup <b>in</b> a title\n\n## Results <img src=x onerror=alert(2)>\n\n"
        "The vaccine <script>alert(3)</script> raised T-cell counts in every patient. "
        'Responses were durable <a href="javascript:alert(4)">click</a> in most patients.\n\n'
        "## Methods\n\nPatients received the <iframe src=javascript:alert(5)></iframe> vaccine weekly.\n",
        encoding="utf-8",
    )
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    build_index(settings, embedder)
    services = Services.start(settings, embedder=embedder)
    with serve(create_app(services=services)) as url:
        yield url, next(iter(services.index.documents))
    services.close()


def test_html_in_questions_and_documents_renders_as_text(page: Any, html_server: tuple[str, str]) -> None:
    url, doc_id = html_server
    page.goto(f"{url}/documents/{doc_id}")
    body = page.locator("article.document").inner_text()
    assert "<script>alert(3)</script>" in body and "<img src=x onerror=alert(2)>" in body
    assert page.locator("article.document img, article.document script, article.document iframe").count() == 0
    shot(page, "document-with-html")

    question = "<script>alert(1)</script> Did the <img src=x onerror=alert(6)> vaccine raise T-cell counts?"
    page.goto(url + "/?q=" + quote(question))  # rendered on the server
    assert page.locator(".answer .question").inner_text() == question
    page.goto(url + "/")
    answer = ask_in_page(page, question)  # rendered by the chat script
    assert answer.locator(".question").inner_text() == question
    assert "<script>alert(3)</script>" in answer.locator(".cards").inner_text()
    assert page.locator("main img, main iframe, main script").count() == 0
    shot(page, "ask-with-html")


def test_a_cut_trial_list_says_how_many_match_and_links_to_all(
    page: Any, live_server: str, services: Services
) -> None:
    original = services.settings
    services.settings = original.model_copy(update={"ask_trials_max": 3})
    try:
        page.goto(live_server + "/")
        answer = ask_in_page(page, "Which trials test PD-1 inhibitors?")  # the chat script's rendering
        assert len(row_texts(answer)) == 3
        more = answer.locator(".trials-more").inner_text()
        found = re.fullmatch(
            r"The first 3 of (\d+) matching trials are listed: all of them on the trials page\.", more
        )
        assert found and int(found.group(1)) > 3, more
        shot(page, "ask-cut-trial-list")
        answer.locator(".trials-more a").click()
        page.wait_for_url("**/trials?q=*")
        assert page.locator("p.count").inner_text().startswith(f"{found.group(1)} trials")
    finally:
        services.settings = original


def test_no_matching_trial_shows_the_nearest_records_labelled_as_such(page: Any, live_server: str) -> None:
    """A question whose trials the documents do not hold (a KRAS G12C inhibitor with nivolumab) gets no trial
    table, and the closest records under a caption that says they do not meet the question, with why it was
    not answered and the trial filter it was read as: in the chat script's rendering as on the
    server-rendered page (both from the API's ``reason_note`` and ``reading.filter_summary``)."""
    question = "Which KRAS G12C inhibitors have been tested with nivolumab?"
    page.goto(live_server + "/")
    answer = ask_in_page(page, question)
    captions = answer.locator("table caption").all_inner_texts()
    assert captions == ["Nearest records (they do not meet every part of the question)"], captions
    rows = row_texts(answer)
    assert rows and all("nivolumab" in r for r in rows), rows
    assert "do not mention KRAS" in answer.locator(".answer-text").inner_text()
    said = [answer.locator(f"p.{c}").inner_text() for c in ("reason", "trial-filter")]
    assert said[0].startswith("Not answered: the question names something") and "nivolumab" in said[1], said
    shot(page, "ask-nearest-records")
    page.goto(live_server + "/?q=" + quote(question))
    server = page.locator(".answer")
    assert server.locator("table caption").all_inner_texts() == captions
    assert sorted(row_texts(server)) == sorted(rows)
    assert [server.locator(f"p.{c}").inner_text() for c in ("reason", "trial-filter")] == said
