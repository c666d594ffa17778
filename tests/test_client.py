"""The notebook client against a live server (real index and model), plus retry behaviour against a stub server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import DOC_000, DOC_003

from qa.client import (
    Answer,
    APIError,
    Client,
    Document,
    Passage,
    PassageList,
    QAClientError,
    QAConnectionError,
    QATimeoutError,
    Trial,
    TrialList,
)

HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"


@pytest.fixture(scope="module")
def qa(live_url: str) -> Iterator[Client]:
    with Client(live_url) as c:
        yield c


@pytest.fixture(scope="module")
def headline(qa: Client) -> Answer:
    return qa.ask(HEADLINE)


def test_client_imports_without_the_server_stack() -> None:
    code = (
        "import sys, qa.client\n"
        "heavy = {'torch', 'faiss', 'fastapi', 'sentence_transformers', 'numpy'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy or (m.startswith('qa.') and m != 'qa.client'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_ask_returns_typed_cited_answer(qa: Client, headline: Answer) -> None:
    assert isinstance(headline, Answer) and not headline.abstained and headline.question == HEADLINE
    assert isinstance(headline.passages, PassageList) and isinstance(headline.trials, TrialList)
    assert headline.sentences and "[1]" in headline.answer
    for s in headline.sentences:
        cited = headline.citation(s)
        assert cited.id == s.passage_id and cited.excerpt(s.start, s.end) == s.text
        # following the citation gives the same passage, so the sentence can be cut out by its offsets
        assert qa.passage(s.passage_id).excerpt(s.start, s.end) == s.text
    interventions = {d.lower() for t in headline.trials for d in t.interventions}
    assert "pembrolizumab" in interventions
    assert any("TLR9 agonist" in t.drug_classes for t in headline.trials)
    assert all(isinstance(o.value, str) for t in headline.trials for o in t.outcomes)


def test_follow_up_continues_the_conversation(headline: Answer) -> None:
    nxt = headline.follow_up("What about nivolumab?")
    assert nxt.conversation_id == headline.conversation_id
    assert "nivolumab" in nxt.resolved_question and "TLR9" in nxt.resolved_question


def test_search_documents_and_trials(qa: Client) -> None:
    hits = qa.search("TLR9 agonist pembrolizumab", k=3)
    assert len(hits) == 3 and all(isinstance(p, Passage) for p in hits)
    assert hits[0].score >= hits[-1].score
    docs = {d.id: d for d in qa.documents()}
    assert docs[DOC_003].doi == "10.3389/fonc.2023.1210245"
    doc = qa.document(DOC_003)
    assert isinstance(doc, Document) and doc.sections[1].title == "Introduction"
    assert doc.text[doc.sections[1].start :].startswith("Introduction")
    trials = qa.trials(drug="pembrolizumab", drug_class="TLR9 agonist")
    assert trials and all(isinstance(t, Trial) for t in trials)
    assert all("pembrolizumab" in t.interventions for t in trials)
    first = trials[0]
    assert qa.trial(first.id).id == first.id
    assert first.passage_id and first.quote and first.start is not None and first.end is not None
    assert qa.passage(first.passage_id).excerpt(first.start, first.end) == first.quote
    pembro = qa.drug("Keytruda")
    assert pembro.name == "pembrolizumab" and "PD-1" in pembro.targets
    assert any(d.name == "pembrolizumab" for d in qa.drugs())


def test_document_filter_round_trip(qa: Client) -> None:
    answer = qa.ask(HEADLINE, top_k=6, documents=[DOC_003])
    assert len(answer.passages) == 6 and {p.doc_id for p in answer.passages} == {DOC_003}
    assert answer.reading.documents == [DOC_003]
    follow = answer.follow_up("What about nivolumab?")
    assert follow.reading.documents == [DOC_003] and {p.doc_id for p in follow.passages} == {DOC_003}
    assert follow.follow_up("And in melanoma?", documents=[]).reading.documents is None
    passages = qa.search("macrophages", k=4, documents=[DOC_000])
    assert len(passages) == 4 and {p.doc_id for p in passages} == {DOC_000}
    trials = qa.trials(documents=DOC_000)  # one id given bare
    assert trials and all(t.doc_id == DOC_000 for t in trials)
    assert [t.id for t in qa.trials(documents=DOC_000, limit=3)] == [t.id for t in trials[:3]]
    with pytest.raises(APIError) as err:
        qa.ask(HEADLINE, documents=["missing-paper"])
    assert err.value.status == 404 and err.value.code == "unknown_document"
    assert err.value.detail == {"unknown": ["missing-paper"]}


def test_trials_read_every_page(qa: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``limit`` the client reads page after page until it has every trial."""
    import qa.client as client_module

    everything = qa.trials()
    monkeypatch.setattr(client_module, "TRIALS_PAGE", 4)
    paged = qa.trials()
    assert len(everything) > 12 and [t.id for t in paged] == [t.id for t in everything]
    assert [t.id for t in qa.trials(limit=9)] == [t.id for t in everything[:9]]


def test_errors_carry_the_api_code_and_message(qa: Client) -> None:
    with pytest.raises(APIError) as empty:
        qa.ask("")
    assert empty.value.status == 422 and empty.value.code == "invalid_request"
    assert "question" in empty.value.message and empty.value.detail
    with pytest.raises(APIError) as missing:
        qa.document("no-such-document")
    assert missing.value.status == 404 and missing.value.code == "not_found"
    assert "no-such-document" in missing.value.message and "no-such-document" in str(missing.value)
    with pytest.raises(APIError) as unknown:
        qa.trials(drug="notadrugatall")
    assert unknown.value.status == 400 and "notadrugatall" in unknown.value.message


def test_to_dataframe(headline: Answer, qa: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    trials = headline.trials.to_dataframe()
    assert len(trials) == len(headline.trials)
    assert {"id", "name", "phase", "interventions", "conditions", "outcomes", "quote"} <= set(trials.columns)
    assert all(isinstance(o, str) for row in trials["outcomes"] for o in row)
    passages = qa.search("TLR9 agonist", k=4).to_dataframe()
    assert list(passages.columns[:3]) == ["id", "doc_id", "title"] and len(passages) == 4
    assert passages["section"].map(lambda s: isinstance(s, str)).all()
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(ImportError, match=r"pip install 'qa\[pandas\]'"):
        headline.trials.to_dataframe()


def test_unreachable_server_is_a_clear_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    c = Client(f"http://127.0.0.1:{port}", retries=2, backoff=0.01)
    with c, pytest.raises(QAConnectionError, match="cannot reach the qa server.*after 3 attempts"):
        c.ask("anything")
    assert issubclass(QAConnectionError, QAClientError) and issubclass(QAConnectionError, ConnectionError)


# -- retries, against a scripted stub server at the network edge ----------------------------------


class Stub:
    """Answers each request with the next scripted (status, headers, body, delay); records the paths."""

    def __init__(self, script: Sequence[tuple[int, dict[str, str], object, float]]) -> None:
        self.script, self.seen = list(script), list[str]()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                stub.seen.append(f"{self.command} {self.path}")
                status, headers, body, delay = stub.script.pop(0) if stub.script else (500, {}, "", 0.0)
                time.sleep(delay)
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Length": str(len(raw)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Stub:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _error(status: int, code: str) -> dict[str, object]:
    return {"error": {"status": status, "code": code, "message": f"{code} happened", "detail": None}}


OK_SEARCH = {"query": "q", "passages": [], "took_ms": 1}  # an unknown field is kept, not rejected
JSON = {"Content-Type": "application/json"}


def _client(url: str, waits: list[float], *, retries: int = 3, timeout: float = 30.0) -> Client:
    c = Client(url, backoff=0.1, retries=retries, timeout=timeout)
    c._sleep = waits.append  # record the waits instead of sleeping
    return c


def test_retries_503_with_backoff_then_succeeds() -> None:
    unavailable = (503, JSON, _error(503, "index_missing"), 0.0)
    waits: list[float] = []
    with Stub([unavailable, unavailable, (200, JSON, OK_SEARCH, 0.0)]) as stub, _client(stub.url, waits) as c:
        assert c.search("q") == PassageList()
    assert len(stub.seen) == 3 and waits == [0.1, 0.2]


def test_retry_after_is_respected_and_long_waits_give_up() -> None:
    waits: list[float] = []
    limited = (429, {**JSON, "Retry-After": "2"}, _error(429, "rate_limited"), 0.0)
    with Stub([limited, (200, JSON, OK_SEARCH, 0.0)]) as stub, _client(stub.url, waits) as c:
        c.search("q")
    assert waits == [2.0]
    too_long = (503, {**JSON, "Retry-After": "3600"}, _error(503, "index_missing"), 0.0)
    with Stub([too_long]) as stub, _client(stub.url, waits) as c, pytest.raises(APIError) as err:
        c.search("q")
    assert (
        len(stub.seen) == 1
        and err.value.code == "index_missing"
        and err.value.message == "index_missing happened"
    )


def test_client_errors_are_never_retried_and_retries_run_out() -> None:
    waits: list[float] = []
    script = [(404, JSON, _error(404, "not_found"), 0.0), (500, JSON, _error(500, "internal_error"), 0.0)]
    with Stub(script) as stub, _client(stub.url, waits) as c:
        with pytest.raises(APIError, match="404 not_found"):
            c.document("x")
        with pytest.raises(APIError, match="500 internal_error"):
            c.document("x")
    assert len(stub.seen) == 2 and waits == []
    bad_gateway = (502, {"Content-Type": "text/html"}, "<html>Bad Gateway</html>", 0.0)
    with (
        Stub([bad_gateway] * 3) as stub,
        _client(stub.url, waits, retries=2) as c,
        pytest.raises(APIError) as err,
    ):
        c.documents()
    assert len(stub.seen) == 3 and err.value.status == 502 and err.value.code == "http_error"
    assert "Bad Gateway" in err.value.message


def test_timeouts_are_wrapped_and_only_gets_are_resent() -> None:
    slow = (200, JSON, OK_SEARCH, 0.5)
    waits: list[float] = []
    with Stub([slow] * 3) as stub, _client(stub.url, waits, retries=1, timeout=0.1) as c:
        with pytest.raises(QATimeoutError, match="timed out"):
            c.search("q")
        assert len(stub.seen) == 2
        with pytest.raises(QATimeoutError):
            c.ask("q")  # the server may have recorded the turn, so a POST is not sent twice
    assert len(stub.seen) == 3


def test_the_client_trial_mirrors_the_api_trial() -> None:
    """qa/client.py stands alone (copied next to a notebook), so it repeats the API's trial models; the two
    must name the same fields."""
    from qa.api.models import EvidenceOut, OutcomeOut, TrialOut
    from qa.client import Evidence, Outcome

    for client_model, api_model in ((Trial, TrialOut), (Outcome, OutcomeOut), (Evidence, EvidenceOut)):
        assert set(client_model.model_fields) == set(api_model.model_fields), client_model.__name__
