"""What a search within a few named papers knows of each of them: which passages are its abstract, and the
abbreviations it defines for itself.

A question asked of one paper ("documents": [id]) is about that paper: its abstract is its own summary of
what it reports, and its abbreviations mean what it says they mean ("ORR" is "objective response rate" in a
trial report, whatever other papers use it for). Both are read from the paper on its first filtered question
and kept for the life of the index (a few small arrays and dicts per paper).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

from qa.lexicon import Lexicon, learn_abbreviations

MAX_DOCUMENTS = 20  # a filter of more papers is a slice of the library, not "this paper": no priors


class PaperPriors:
    def __init__(
        self,
        documents: Mapping[str, Any] | None,
        passages: Any,
        rows: Callable[[list[str]], np.ndarray],
        vectors: Callable[[np.ndarray], np.ndarray],
    ):
        """``documents``: the index's documents by id; ``passages``: its passages by row; ``rows``: a
        document's passage rows (``Retriever.document_rows``); ``vectors``: passage vectors by row."""
        self.documents = documents
        self.passages = passages
        self.rows = rows
        self.vectors = vectors
        self._abstracts: dict[str, np.ndarray] = {}
        self._sums: dict[str, tuple[np.ndarray, int]] = {}  # doc id -> sum of its passage vectors, count
        self._lexicons: dict[str, Lexicon] = {}
        self._lock = threading.Lock()

    def applies(self, documents: Collection[str] | None) -> bool:
        return bool(documents) and len(documents or ()) <= MAX_DOCUMENTS

    def abstract_rows(self, documents: Collection[str]) -> np.ndarray:
        """The passage rows of ``documents``' abstracts (the sections a reader marked ``abstract``)."""
        parts = [self._abstract(d) for d in dict.fromkeys(documents)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def centroid(self, documents: Collection[str]) -> np.ndarray:
        """The unit mean of ``documents``' passage vectors (zeros when they have none)."""
        total: np.ndarray | None = None
        for doc_id in dict.fromkeys(documents):
            found = self._sums.get(doc_id)
            if found is None:
                rows = self.rows([doc_id])
                vecs = np.asarray(self.vectors(rows), dtype=np.float64) if len(rows) else np.zeros((0, 1))
                found = self._sums[doc_id] = (vecs.sum(axis=0), len(rows))
            if found[1]:
                total = found[0] if total is None else total + found[0]
        if total is None:
            return np.zeros(0)
        norm = float(np.linalg.norm(total))
        return total / norm if norm else total

    def expansions(self, question: str, documents: Collection[str]) -> list[str]:
        """Each named paper's own long forms of the abbreviations the question uses, and its abbreviations
        of the long forms the question spells out ("objective response rate" -> "ORR")."""
        out: dict[str, None] = {}
        for doc_id in dict.fromkeys(documents):
            for term in self._lexicon(doc_id).expand(question, long_forms=False):
                out.setdefault(term, None)
        return list(out)

    def _abstract(self, doc_id: str) -> np.ndarray:
        found = self._abstracts.get(doc_id)
        if found is None:
            found = self._abstracts[doc_id] = self._read_abstract(doc_id)
        return found

    def _lexicon(self, doc_id: str) -> Lexicon:
        found = self._lexicons.get(doc_id)
        if found is None:
            doc = self._document(doc_id)
            with self._lock:  # one learning pass per paper, however many questions arrive at once
                found = self._lexicons.get(doc_id)
                if found is None:
                    found = Lexicon(learn_abbreviations([doc.text]) if doc is not None else {})
                    self._lexicons[doc_id] = found
        return found

    def _document(self, doc_id: str) -> Any:
        if self.documents is None or doc_id not in self.documents:
            return None
        return self.documents[doc_id]

    def _read_abstract(self, doc_id: str) -> np.ndarray:
        doc = self._document(doc_id)
        spans = [(s.start, s.end) for s in doc.sections if s.kind == "abstract"] if doc is not None else []
        rows = self.rows([doc_id])
        if not spans or not len(rows):
            return np.zeros(0, dtype=np.int64)
        fetched = (
            self.passages.rows(rows.tolist())
            if hasattr(self.passages, "rows")
            else [self.passages[int(r)] for r in rows]
        )
        inside = [any(s <= p.start and p.end <= e for s, e in spans) for p in fetched]
        return rows[np.array(inside, dtype=bool)]
