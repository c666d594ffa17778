"""Python client for the JSON API, for notebooks: typed results, one exception family, retries; needs only httpx and pydantic."""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, PrivateAttr
from pydantic_core import CoreSchema, core_schema

if TYPE_CHECKING:
    import pandas

# Deliberately no imports from the rest of `qa`: this module must work on a machine without torch or faiss.
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
RETRY_STATUSES = frozenset({429, 502, 503, 504})
TRIALS_PAGE = 1000  # trials per request while reading every page of GET /api/trials
CHANGE_TIMEOUT = httpx.Timeout(600.0, connect=5.0)  # an add returns once the paper is searchable
# Failures where the request never reached the server, so any method is safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures after the request may have been processed: retried for GET only.
_MAYBE_SENT = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)


class QAClientError(Exception):
    """Base class of every error this client raises."""


class APIError(QAClientError):
    """The server answered with an error: its HTTP status, stable code, message and detail."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None, *, url: str = "") -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.detail, self.url = status, code, message, detail, url


class QAConnectionError(QAClientError, ConnectionError):
    """The server could not be reached (or dropped the connection), even after retrying."""


class QATimeoutError(QAConnectionError, TimeoutError):
    """The server did not answer within the timeout."""


class _Record(BaseModel):
    """Result records keep fields this client does not know yet (newer servers add some)."""

    model_config = ConfigDict(extra="allow")

    def row(self) -> dict[str, Any]:
        """This record as one flat table row."""
        return self.model_dump()


M = TypeVar("M", bound=_Record)


class RecordList(list[M], Generic[M]):
    """A list of records that can become a pandas DataFrame."""

    item: type[_Record] = _Record

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        items = core_schema.list_schema(handler.generate_schema(cls.item))
        return core_schema.no_info_after_validator_function(
            cls, items, serialization=core_schema.plain_serializer_function_ser_schema(list)
        )

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per record (lists stay lists); needs pandas: ``pip install 'qa[pandas]'``."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_dataframe() needs pandas: pip install 'qa[pandas]'") from exc
        return pd.DataFrame([r.row() for r in self])


class Span(_Record):
    start: int
    end: int


class Passage(_Record):
    id: str
    doc_id: str
    title: str = ""
    section: list[str] = Field(default_factory=list)
    kind: str = "body"
    text: str
    start: int
    end: int
    score: float = 0.0
    url: str = ""
    highlights: list[Span] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)

    def excerpt(self, start: int, end: int) -> str:
        """The text between two document offsets inside this passage (e.g. a cited sentence's)."""
        if not self.start <= start <= end <= self.end:
            raise ValueError(f"offsets {start}:{end} are outside passage {self.id} ({self.start}:{self.end})")
        return self.text[start - self.start : end - self.start]

    def row(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"highlights"})
        data["section"] = " > ".join(self.section)
        return data


class PassageList(RecordList[Passage]):
    item = Passage


# The trial records below mirror the server's OutcomeOut, EvidenceOut and TrialOut (qa/api/models.py) on
# purpose: this file must work copied next to a notebook, without the server's code. Defaults are lenient so
# that an older server's answers still parse; a test checks the two stay in step.


class Outcome(_Record):
    measure: str
    value: str
    detail: str | None = None
    n: int | None = None
    denominator: int | None = None
    start: int = 0
    end: int = 0
    text: str = ""
    versus: list[str] = Field(default_factory=list)
    quote: str = ""

    def __str__(self) -> str:
        return f"{self.measure} {self.value}" + (f" ({self.detail})" if self.detail else "")


class Evidence(_Record):
    passage_id: str
    doc_id: str
    quote: str
    start: int
    end: int
    refs: list[int] = Field(default_factory=list)
    kind: str = "body"
    role: str = "mention"
    note: str | None = None


class Trial(_Record):
    # Field order is the table's column order (to_dataframe), as it was before the later fields were typed.
    id: str
    name: str | None = None
    nct_ids: list[str] = Field(default_factory=list)
    phase: str | None = None
    interventions: list[str] = Field(default_factory=list)
    drug_classes: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    setting: list[str] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(default_factory=list)
    quote: str | None = None
    passage_id: str | None = None
    doc_id: str | None = None
    start: int | None = None
    end: int | None = None
    label: str = ""
    aliases: list[str] = Field(default_factory=list)
    status: str | None = None
    designations: list[str] = Field(default_factory=list)
    biomarkers: list[str] = Field(default_factory=list)
    refs: list[int] = Field(default_factory=list)
    source_kind: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    registry_ids: list[str] = Field(default_factory=list)
    arms: list[str] = Field(default_factory=list)

    def row(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"evidence"})
        data["outcomes"] = [str(o) for o in self.outcomes]
        return data


class TrialList(RecordList[Trial]):
    item = Trial


class AnswerSentence(_Record):
    text: str
    marker: int
    passage_id: str
    doc_id: str
    start: int
    end: int
    score: float = 0.0


class Reading(_Record):
    """How the server read a question: the follow-up move, the trial filter applied, its scope, the topic."""

    move: str = "new"
    filters: dict[str, Any] | None = None
    filter_summary: str | None = None  # the filter in words, as the web page shows it
    scope: list[str] | None = None
    topic: str | None = None
    documents: list[str] | None = None  # the document filter applied; None: every document


class Answer(_Record):
    conversation_id: str
    question: str
    resolved_question: str = ""
    answer: str
    abstained: bool
    kind: str = "other"  # value, date, list, yesno, definition, mechanism or other
    reason: str = "answered"  # answered, no_evidence, unknown_entity, value_not_reported or no_matching_trial
    reason_note: str | None = None  # why it abstained, in a sentence for a reader
    sentences: list[AnswerSentence] = Field(default_factory=list)
    passages: PassageList = Field(default_factory=PassageList)
    trials: TrialList = Field(default_factory=TrialList)
    # how many trials match: ``trials`` lists QA_ASK_TRIALS_MAX (100) at most; Client.trials(q=...) reads all
    trials_total: int | None = None
    evidence: float = 0.0
    nearest_trials: TrialList = Field(default_factory=TrialList)  # no trial matched: the closest records
    reading: Reading = Field(default_factory=Reading)
    _client: Client | None = PrivateAttr(None)

    def citation(self, sentence: AnswerSentence) -> Passage:
        """The passage an answer sentence cites (its [n] marker)."""
        return self.passages[sentence.marker - 1]

    def follow_up(self, question: str, *, top_k: int = 5, documents: Sequence[str] | None = None) -> Answer:
        """Ask the next question in this conversation (it may refer back: "what about nivolumab?"); it keeps
        this answer's document filter unless ``documents`` is given (an empty list lifts it)."""
        if self._client is None:
            raise QAClientError(
                "this answer is not attached to a client; use client.ask(..., conversation_id=)"
            )
        return self._client.ask(
            question, conversation_id=self.conversation_id, top_k=top_k, documents=documents
        )

    def __str__(self) -> str:
        return self.answer


class SearchResult(_Record):
    query: str
    passages: PassageList


class DocumentSummary(_Record):
    id: str
    title: str | None = None
    authors: list[str] = Field(default_factory=list)
    journal: str | None = None
    year: int | None = None
    doi: str | None = None
    url: str | None = None
    licence: str | None = None
    file: str = ""
    characters: int = 0
    passages: int = 0


class DocumentList(RecordList[DocumentSummary]):
    item = DocumentSummary


class DocumentChange(_Record):
    """What an add, replace or remove did to the index (None fields when nothing changed)."""

    build: str | None = None
    documents: int | None = None
    passages: int | None = None
    passages_embedded: int = 0
    sentences_embedded: int = 0
    seconds: float = 0.0


class DocumentRecord(DocumentSummary):
    """A document after ``add_document``/``replace_document``: 'added', 'replaced', or 'exists' (same bytes)."""

    status: str = "added"
    change: DocumentChange = Field(default_factory=DocumentChange)


class Section(_Record):
    id: str
    title: str
    number: str | None = None
    level: int = 1
    kind: str = ""
    start: int
    end: int
    children: list[Section] = Field(default_factory=list)


class Document(DocumentSummary):
    text: str
    sections: list[Section] = Field(default_factory=list)


class Drug(_Record):
    name: str
    aliases: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    trials: list[str] = Field(default_factory=list, description="Ids of the trials that give the drug.")

    def row(self) -> dict[str, Any]:
        return self.model_dump(exclude={"evidence", "learned"})


class DrugList(RecordList[Drug]):
    item = Drug


def _items(data: Any, key: str) -> Any:
    """A list endpoint's items, whether the server sends a bare list or {key: [...], ...}."""
    return data[key] if isinstance(data, dict) and key in data else data


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value.strip() else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def _api_error(response: httpx.Response) -> APIError:
    try:
        err = response.json()["error"]
        return APIError(
            int(err.get("status") or response.status_code),
            str(err.get("code") or "http_error"),
            str(err.get("message") or response.reason_phrase),
            err.get("detail"),
            url=str(response.request.url),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        # Not our error shape (a proxy's page, say): keep the start of the body.
        text = response.text.strip()[:200] or response.reason_phrase
        return APIError(response.status_code, "http_error", text, url=str(response.request.url))


class Client:
    """``Client("http://127.0.0.1:8000").ask("Which trials combine TLR9 agonists with pembrolizumab?")``."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_wait: float = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """``base_url`` defaults to $QA_BASE_URL, then http://127.0.0.1:8000. ``retries`` counts resends
        after connection failures and 429/502/503/504 (waiting ``backoff`` × 2ⁿ s, or the server's
        Retry-After when it is at most ``max_retry_wait`` s); other 4xx/5xx answers are never resent."""
        self.base_url = (base_url or os.environ.get("QA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.retries, self.backoff, self.max_retry_wait = retries, backoff, max_retry_wait
        self._sleep: Callable[[float], None] = time.sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"User-Agent": "qa-client", "Accept": "application/json", **(headers or {})},
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    # -- endpoints -------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        conversation_id: str | None = None,
        top_k: int = 5,
        documents: Sequence[str] | None = None,
    ) -> Answer:
        """A cited answer; pass ``conversation_id`` (or use ``Answer.follow_up``) to continue a conversation.

        ``documents`` (ids, see :meth:`documents`) answers from those documents only; a follow-up without
        it keeps the previous turn's filter, and an empty list lifts it."""
        body: dict[str, Any] = {"question": question, "top_k": top_k}
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        if documents is not None:
            body["documents"] = _ids(documents)
        answer = Answer.model_validate(self._request("POST", "/api/ask", json=body))
        answer._client = self
        return answer

    def search(self, q: str, k: int = 10, documents: Sequence[str] | None = None) -> PassageList:
        """Passages ranked by hybrid (dense + keyword) search, without answer extraction; with
        ``documents`` (ids), the best passages of those documents."""
        params: dict[str, Any] = {"q": q, "k": k}
        if documents:
            params["documents"] = _ids(documents)
        return SearchResult.model_validate(self._request("GET", "/api/search", params=params)).passages

    def trials(
        self,
        *,
        drug: str | None = None,
        drug_class: str | None = None,
        target: str | None = None,
        condition: str | None = None,
        phase: str | None = None,
        q: str | None = None,
        outcome: str | None = None,
        designation: str | None = None,
        setting: str | None = None,
        biomarker: str | None = None,
        status: str | None = None,
        documents: Sequence[str] | None = None,
        limit: int | None = None,
        **filters: str,
    ) -> TrialList:
        """Trials described in the documents, filtered (e.g. ``drug="pembrolizumab", condition="melanoma"``,
        ``outcome="ORR"``, ``designation="Fast Track"``, ``setting="first-line"``, ``biomarker="PD-L1 >= 50%"``,
        ``status="ongoing"``); ``documents`` (ids) keeps the trials those documents describe. All of them
        (read a page at a time), or the first ``limit``."""
        named = {"drug": drug, "drug_class": drug_class, "target": target, "condition": condition}
        named |= {"outcome": outcome, "designation": designation, "setting": setting}
        named |= {"biomarker": biomarker, "status": status}
        params: dict[str, Any] = {
            k: v for k, v in {**named, "phase": phase, "q": q, **filters}.items() if v is not None
        }
        if documents:
            params["documents"] = _ids(documents)
        out = TrialList()
        while limit is None or len(out) < limit:
            page = TRIALS_PAGE if limit is None else min(TRIALS_PAGE, limit - len(out))
            data = self._request("GET", "/api/trials", params={**params, "offset": len(out), "limit": page})
            items = _items(data, "trials")
            out.extend(Trial.model_validate(t) for t in items)
            if not items or not isinstance(data, dict) or len(out) >= int(data.get("count", len(out))):
                break  # the last page (an older server sends every trial in one)
        return out

    def trial(self, trial_id: str) -> Trial:
        """One trial by id, NCT id or name (e.g. ``"NCT02983045"``)."""
        return Trial.model_validate(self._request("GET", f"/api/trials/{_quote(trial_id)}"))

    def drugs(self) -> DrugList:
        """Drugs the documents name, with their classes and targets."""
        return DrugList(Drug.model_validate(d) for d in _items(self._request("GET", "/api/drugs"), "drugs"))

    def drug(self, name: str) -> Drug:
        """A drug by any of its names, with what the documents say about it."""
        return Drug.model_validate(self._request("GET", f"/api/drugs/{_quote(name)}"))

    def documents(self) -> DocumentList:
        """Every indexed document with its metadata."""
        data = _items(self._request("GET", "/api/documents"), "documents")
        return DocumentList(DocumentSummary.model_validate(d) for d in data)

    def document(self, doc_id: str) -> Document:
        """A document's full text and section tree (all offsets index into ``text``)."""
        return Document.model_validate(self._request("GET", f"/api/documents/{_quote(doc_id)}"))

    def passage(self, passage_id: str) -> Passage:
        return Passage.model_validate(self._request("GET", f"/api/passages/{_quote(passage_id)}"))

    # -- document changes (need the server's QA_API_KEY: ``api_key=`` or $QA_API_KEY) ----------------

    def add_document(self, path: str | os.PathLike[str], *, api_key: str | None = None) -> DocumentRecord:
        """Upload a paper (.pdf, .xml, .md, .txt); returns once it is searchable. The same bytes again return
        the record already indexed (``status == 'exists'``)."""
        data = _file_upload(path)
        return DocumentRecord.model_validate(
            self._request(
                "POST",
                "/api/documents",
                files={"file": data},
                headers=_key_header(api_key),
                timeout=CHANGE_TIMEOUT,
            )
        )

    def replace_document(
        self, doc_id: str, path: str | os.PathLike[str], *, api_key: str | None = None
    ) -> DocumentRecord:
        """Replace document ``doc_id`` by a new file; it keeps its id."""
        return DocumentRecord.model_validate(
            self._request(
                "PUT",
                f"/api/documents/{_quote(doc_id)}",
                files={"file": _file_upload(path)},
                headers=_key_header(api_key),
                timeout=CHANGE_TIMEOUT,
            )
        )

    def remove_document(self, doc_id: str, *, api_key: str | None = None) -> None:
        """Remove a document from the index (APIError 404 when there is none with that id)."""
        self._request(
            "DELETE", f"/api/documents/{_quote(doc_id)}", headers=_key_header(api_key), timeout=CHANGE_TIMEOUT
        )

    # -- transport -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                retryable = isinstance(exc, _NOT_SENT) or (method == "GET" and isinstance(exc, _MAYBE_SENT))
                if not retryable or attempt >= self.retries:
                    raise _transport_error(exc, method, f"{self.base_url}{path}", attempt) from exc
                wait = self.backoff * 2**attempt
            else:
                if response.is_success:
                    return None if response.status_code == 204 else _json(response)
                wait = self._status_wait(response, attempt)
                if wait is None:
                    raise _api_error(response)
            self._sleep(wait)
            attempt += 1

    def _status_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before resending, or None to give up."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
            return None
        after = _retry_after(response)
        if after is None:
            return self.backoff * 2**attempt
        return after if after <= self.max_retry_wait else None


def _ids(documents: Sequence[str]) -> list[str]:
    """Document ids as a list (sent as a JSON list, or as one repeated query parameter)."""
    if isinstance(documents, str):  # one id given bare: not its characters
        return [documents]
    return list(documents)


def _key_header(api_key: str | None) -> dict[str, str]:
    key = api_key or os.environ.get("QA_API_KEY") or ""
    return {"X-API-Key": key} if key else {}


def _file_upload(path: str | os.PathLike[str]) -> tuple[str, bytes]:
    with open(path, "rb") as fh:
        return os.path.basename(os.fspath(path)), fh.read()


def _quote(segment: str) -> str:
    return quote(segment, safe="")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise QAClientError(f"{response.request.url} did not return JSON: {response.text[:200]!r}") from exc


def _transport_error(exc: httpx.TransportError, method: str, url: str, attempt: int) -> QAConnectionError:
    tries = f" (after {attempt + 1} attempts)" if attempt else ""
    if isinstance(exc, httpx.TimeoutException):
        return QATimeoutError(
            f"{method} {url} timed out{tries}: {type(exc).__name__}; raise Client(timeout=...)"
        )
    return QAConnectionError(
        f"cannot reach the qa server at {url}{tries}: {exc or type(exc).__name__}. "
        "Is it running (`make run`), and is the base URL (QA_BASE_URL) right?"
    )
