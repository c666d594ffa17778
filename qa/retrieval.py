"""Hybrid retrieval: dense (FAISS) and keyword (BM25) scores fused by one global rule, overlaps merged."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal, Protocol

import numpy as np

from qa.chunking import Passage, passage_id
from qa.index.dense import DenseIndex
from qa.index.keyword import KeywordIndex
from qa.lexicon import Lexicon
from qa.paper_priors import PaperPriors
from qa.references import ReferenceMap, labels_asked

Encoder = Callable[[list[str]], np.ndarray]
Mode = str  # "hybrid" | "dense" | "bm25"
Fusion = Literal["rrf", "minmax", "zscore"]


class PassageIndex(Protocol):
    """What retrieval needs from an index: the passages (row order) and the two searchable indexes."""

    @property
    def passages(self) -> Sequence[Passage]:
        """A list, or the store's table read by row (which also has ``rows`` and ``document_rows``)."""

    dense: DenseIndex
    keyword: KeywordIndex

    def dense_vectors(self, rows: np.ndarray) -> np.ndarray: ...


@dataclass
class Hit:
    passage: Passage
    score: float  # fused score, comparable within one query
    dense: float  # cosine similarity of the passage to the question
    bm25: float
    rank: int = 0
    merged: list[str] = field(default_factory=list)  # ids of indexed passages merged into ``passage``


def rrf(rankings: list[list[int]], k: int) -> dict[int, float]:
    """Reciprocal rank fusion: each ranking adds 1 / (k + rank) for every row it lists."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank)
    return fused


def _minmax(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(scores.min()), float(scores.max())
    return (scores - lo) / ((hi - lo) or 1.0)


def _zscore(scores: np.ndarray) -> np.ndarray:
    # ndarray.mean/std written out: the same arithmetic without their ~20 us of Python per call.
    if not len(scores):
        return scores
    centred = scores - scores.sum() / len(scores)
    std = math.sqrt(float(centred @ centred) / len(scores))
    return centred / (std or 1.0)


def score_fusion(dense: np.ndarray, bm25: np.ndarray, alpha: float, *, scale: str = "minmax") -> np.ndarray:
    """``alpha`` * dense + (1 - alpha) * BM25 for the same candidate rows, each side scaled over those rows
    (min-max or z-score)."""
    norm = _zscore if scale == "zscore" else _minmax
    dense, bm25 = np.asarray(dense, dtype=np.float64), np.asarray(bm25, dtype=np.float64)
    return alpha * norm(dense) + (1.0 - alpha) * norm(bm25)


# A question asked of a few named papers is most often about what they report, and a paper's abstract is its
# own statement of that: its passages gain this many z-score units. Chosen on our paper questions
# (tests/data/paper_questions.jsonl) and checked on a held-out set written apart from them; see the class doc.
ABSTRACT_BOOST = 0.75
# Within named papers, a passage's dense score loses this share of its cosine to the papers' mean passage
# vector: the question's topic is the paper's, so what ranks its passages apart is the rest of the match.
# Own paper questions through POST /api/ask, hit@5 at 0 / 0.3 / 0.45 / 0.6 / 0.9 / 1.2: 0.833 / 0.881 /
# 0.881 / 0.881 / 0.857 / 0.738; held-out: 0.917 / 0.944 / 0.944 / 0.944 / 0.917 / 0.861. 0.5: the middle.
TOPIC_WEIGHT = 0.5
EVIDENCE_BOOST = 2.0  # z-score units for a passage quoting a trial the answer leads with (as a named figure)


class Retriever:
    def __init__(
        self,
        index: PassageIndex,
        encode: Encoder,
        *,
        rrf_k: int = 60,
        fusion: Fusion = "zscore",
        alpha: float = 0.6,
        depth: int = 100,
        lexicon: Lexicon | None = None,
        lexicon_weight: float = 1.0,
        lexicon_long_forms: bool = False,
        lexicon_abbreviations: bool = False,
        sentence_weight: float = 0.2,
        reference_boost: float = 2.0,
        abstract_boost: float = ABSTRACT_BOOST,
        topic_weight: float = TOPIC_WEIGHT,
    ) -> None:
        """``fusion``, ``alpha`` and ``depth`` were chosen on SciFact train claims and the dev questions
        (z-score fusion at alpha 0.6 beat RRF by about 2.5 nDCG@10 points there); see qa/evaluation/beir.py.

        ``sentence_weight`` 0.2, ``reference_boost`` 2.0 and the lexicon's lay terms were chosen on the
        round-1 and round-2 dev questions and SciFact train claims. The learned abbreviations are off
        (``lexicon_abbreviations``): long form -> abbreviation gained nothing on the dev questions over
        the lay terms and cost SciFact train 0.006 nDCG@10, abbreviation -> long form also cost round-1
        hit@1. Sentence weights 0.35-0.5 and dense Rocchio feedback gained nothing (feedback was removed).

        ``abstract_boost`` applies only to a search within at most ``qa.paper_priors.MAX_DOCUMENTS`` named
        documents (the dev and BEIR questions, asked of the whole corpus, are untouched). On the 42 paper
        questions of tests/data/paper_questions.jsonl (asked through the vocabulary expansion, as POST
        /api/ask does) hit@5 went 0.786 -> 0.881 at 0.75; on 36 held-out questions written by another
        session to be answered in the papers' bodies (none in an abstract) it stayed 0.861 (hit@1
        0.694 -> 0.583: the price); 1.0 and above cost that set hit@5. Document-local IDF on the keyword side
        within a filter and the documents' own long forms beside their abbreviations in embedded text were
        tried and dropped (no gain on either set)."""
        self.index = index
        self.encode = encode
        self.rrf_k = rrf_k
        self.fusion = fusion
        self.alpha = alpha  # weight of the dense side in min-max fusion; one global value
        self.depth = depth  # candidates taken from each side before fusing
        self.lexicon = lexicon  # expands the keyword side both ways (abbreviations, lay terms)
        self.lexicon_weight = lexicon_weight  # of the lexicon's terms' BM25 score, next to the question's
        self.lexicon_long_forms = lexicon_long_forms  # an abbreviation asked brings its long form too
        self.lexicon_abbreviations = lexicon_abbreviations  # the documents' own definitions, both ways
        self.sentence_weight = sentence_weight  # share of a passage's best sentence in its dense score
        self._sentences = SentenceMatcher.for_index(index) if sentence_weight else None
        self.reference_boost = reference_boost  # z-score units added to passages a question refers to
        self._references = ReferenceMap.for_index(index) if reference_boost else None
        # z-score units added to a paper's abstract when the question is asked of a few named papers
        self.abstract_boost = abstract_boost
        self.papers = PaperPriors(
            getattr(index, "documents", None), index.passages, self.document_rows, index.dense_vectors
        )
        # share of each passage's cosine to its papers' centroid taken off its dense score, within named papers
        self.topic_weight = topic_weight

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        mode: Mode = "hybrid",
        query_vector: np.ndarray | None = None,
        expansions: list[str] | None = None,
        keyword_scores: np.ndarray | None = None,
        documents: Collection[str] | None = None,
        evidence: Collection[str] = (),
    ) -> list[Hit]:
        """Top ``k`` passages for ``query``; ``expansions`` are extra terms for the keyword side.

        ``keyword_scores`` (from :meth:`keyword_scores`) lets a caller score the keyword side while the
        question's vector is still being computed. With ``documents`` (ids) both sides search only those
        documents' passages, so the hits are their best passages (not what is left of a global top k).
        ``evidence`` (passage ids: those quoting the trials the question's filter matched) join the
        candidates and gain ``EVIDENCE_BOOST`` z-score units, so an answer led by those trials cites them
        among its passages.
        """
        n = len(self.index.passages)
        allowed = self.document_rows(documents) if documents else None
        candidates = n if allowed is None else len(allowed)
        if candidates == 0 or not query.strip():
            return []
        depth = min(candidates, max(self.depth, 5 * k))
        bm25_all = (
            keyword_scores
            if keyword_scores is not None
            else self.keyword_scores(query, expansions, documents)
        )
        qvec = query_vector if query_vector is not None else self.encode([query])[0]
        found_scores, found_rows = self.index.dense.search(qvec[None, :], depth, rows=allowed)
        dense_rows = found_rows[0][found_rows[0] >= 0].astype(np.int64)
        dense = found_scores[0][: len(dense_rows)].astype(np.float64)
        bm25_rows = (
            _top_rows(bm25_all, depth) if allowed is None else allowed[_top_rows(bm25_all[allowed], depth)]
        )
        bm25_rows = bm25_rows[bm25_all[bm25_rows] > 0]

        if mode == "dense":
            rows, fused = dense_rows, dense
        elif mode == "bm25":
            rows, fused = bm25_rows, bm25_all[bm25_rows].astype(np.float64)
        elif self.fusion in ("minmax", "zscore"):
            # Both scores for every candidate, so neither side is missing: the dense score of a BM25-only
            # row is its cosine to the question.
            in_dense = np.zeros(n, dtype=bool)
            in_dense[dense_rows] = True
            missing = bm25_rows[~in_dense[bm25_rows]]
            if len(missing):
                dense_rows = np.concatenate([dense_rows, missing])
                dense = np.concatenate([dense, self.index.dense_vectors(missing) @ qvec])
            named: list[int] = []
            if self._references is not None and labels_asked(query):
                # a label in every paper is looked for among the named papers' passages or the candidates
                among = allowed if allowed is not None else dense_rows
                named = self._references.find(query, among.tolist())
            quoted = self._rows_of(evidence)
            if named or quoted:
                dense_rows, dense = self._add_rows([*named, *quoted], dense_rows, dense, qvec, allowed)
            rows, ranked = dense_rows, dense
            scoped = self.papers.applies(documents)  # asked of a few named papers: their priors apply
            topic = self.papers.centroid(documents) if scoped and documents else None
            if self.topic_weight and topic is not None and len(topic):
                # every passage of a paper shares its topic: what tells them apart is the rest of the match
                ranked = dense - self.topic_weight * (self.index.dense_vectors(rows) @ topic)
            if self._sentences is not None:  # a passage's best sentence counts too
                best = self._sentences.best(rows, qvec)
                ranked = (1.0 - self.sentence_weight) * ranked + self.sentence_weight * best
            fused = score_fusion(ranked, bm25_all[rows], self.alpha, scale=self.fusion)
            if named:
                fused = fused + self.reference_boost * np.isin(rows, named)
            if quoted:
                fused = fused + EVIDENCE_BOOST * np.isin(rows, quoted)
            if self.abstract_boost and scoped and documents:
                fused = fused + self.abstract_boost * np.isin(rows, self.papers.abstract_rows(documents))
        else:
            by_row = rrf([dense_rows.tolist(), bm25_rows.tolist()], self.rrf_k)
            rows, fused = np.fromiter(by_row, dtype=np.int64), np.fromiter(by_row.values(), dtype=np.float64)
        dense_score = dict(zip(dense_rows.tolist(), dense.tolist(), strict=True))
        order = np.argsort(-fused, kind="stable")  # ties keep the candidates' order
        return self._hits(rows[order].tolist(), fused[order].tolist(), dense_score, bm25_all, qvec, k)

    @cached_property
    def _rows_by_document(self) -> dict[str, np.ndarray]:
        by_doc: dict[str, list[int]] = {}
        for row, p in enumerate(self.index.passages):
            by_doc.setdefault(p.doc_id, []).append(row)
        return {doc_id: np.array(rows, dtype=np.int64) for doc_id, rows in by_doc.items()}

    def document_rows(self, documents: Collection[str]) -> np.ndarray:
        """The passage rows of ``documents``, ascending (ids without passages add none)."""
        table_rows = getattr(self.index.passages, "document_rows", None)
        if table_rows is not None:  # the store's table: read by its doc_id index, not scanned
            return np.array(table_rows(documents), dtype=np.int64)
        parts = [self._rows_by_document[d] for d in dict.fromkeys(documents) if d in self._rows_by_document]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def keyword_scores(
        self, query: str, expansions: list[str] | None = None, documents: Collection[str] | None = None
    ) -> np.ndarray:
        """BM25 score of every passage (row order) for ``query`` plus its ``expansions``; asked of a few
        named ``documents``, also with their own abbreviations of the long forms it spells out."""
        extra = (
            self.lexicon.expand(
                query, long_forms=self.lexicon_long_forms, abbreviations=self.lexicon_abbreviations
            )
            if self.lexicon
            else []
        )
        if documents and self.papers.applies(documents):
            extra = list(dict.fromkeys([*extra, *self.papers.expansions(query, documents)]))
        if self.lexicon_weight == 1.0 or not extra:
            return self.index.keyword.scores(" ".join([query, *(expansions or []), *extra]))
        asked = self.index.keyword.scores(" ".join([query, *(expansions or [])]))
        return asked + np.float32(self.lexicon_weight) * self.index.keyword.scores(" ".join(extra))

    def referenced(self, query: str, among: Collection[str]) -> list[str]:
        """Ids of the passages ``among`` (ids: the hits) that the question's figure, table or section
        references name (none without)."""
        if self._references is None or not among or not labels_asked(query):
            return []
        rows = {i: found[0] for i in dict.fromkeys(among) if (found := self._rows_of([i]))}
        named = set(self._references.find(query, list(rows.values())))
        return [i for i, row in rows.items() if row in named]

    def _rows_of(self, passage_ids: Collection[str]) -> list[int]:
        """Rows of the indexed passages with these ids (ids not indexed are left out)."""
        if not passage_ids:
            return []
        row_of = getattr(self.index.passages, "row_of", None)
        if row_of is None:  # an in-memory index: a list of passages
            by_id = {p.id: row for row, p in enumerate(self.index.passages)}
            found = [by_id.get(i) for i in passage_ids]
        else:
            found = [row_of(i) for i in passage_ids]
        return [r for r in found if r is not None]

    def _add_rows(
        self,
        wanted: list[int],
        rows: np.ndarray,
        dense: np.ndarray,
        qvec: np.ndarray,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The candidates plus the ``wanted`` rows (figures, tables or sections the question names, passages
        quoting its trials); with a document filter only those inside it."""
        named = np.array(sorted(set(wanted)), dtype=np.int64)
        if allowed is not None:
            named = named[np.isin(named, allowed)]
        missing = named[~np.isin(named, rows)] if len(named) else named
        if not len(missing):
            return rows, dense
        return np.concatenate([rows, missing]), np.concatenate(
            [dense, self.index.dense_vectors(missing) @ qvec]
        )

    def _hits(
        self,
        rows: list[int],
        fused: list[float],
        dense_score: dict[int, float],
        bm25_all: np.ndarray,
        qvec: np.ndarray,
        k: int,
    ) -> list[Hit]:
        """Best-first hits from candidates ranked best first; a passage overlapping better ones is merged
        into them (the hit spans all)."""
        hits: list[Hit] = []
        own: dict[int, str] = {}  # id(hit) -> the indexed passage it started from
        fetched = _PassageFetch(self.index.passages, rows, 2 * k)
        for i, (row, score) in enumerate(zip(rows, fused, strict=True)):
            p = fetched.at(i)
            hosts = [h for h in hits if _overlaps(h.passage, p)]
            if hosts:
                host = hosts[0]
                host.passage = merge_passages(host.passage, p)
                host.merged.append(p.id)
                for other in hosts[1:]:  # p bridges two hits: they become one
                    host.passage = merge_passages(host.passage, other.passage)
                    host.merged.extend([own[id(other)], *other.merged])
                    hits.remove(other)
                continue
            dense = dense_score.get(row)
            if dense is None:
                dense = float(self.index.dense_vectors(np.array([row]))[0] @ qvec)
            hit = Hit(p, score, dense, float(bm25_all[row]))
            own[id(hit)] = p.id
            hits.append(hit)
            if len(hits) >= k:
                break
        for rank, hit in enumerate(hits, start=1):
            hit.rank = rank
        return hits


def _top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` best scores, best first, ties in row order, as a stable sort of the whole array
    would give; that sort costs ~30-80 ms at 10^6 passages, and BM25 scores are mostly zero, so only the
    positive rows are ranked (the zeros that fill up to ``k`` are taken in row order)."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        sub = scores[positive]
        kth = -np.partition(-sub, k - 1)[k - 1]
        better = positive[sub > kth]
        ties = positive[sub == kth][: k - len(better)]
        return np.concatenate([better[np.argsort(-scores[better], kind="stable")], ties])
    zeros = np.flatnonzero(scores == 0)[: k - len(positive)]
    if len(positive) + len(zeros) < k:  # negative scores needed too
        return np.argsort(-scores, kind="stable")[:k]
    return np.concatenate([positive[np.argsort(-scores[positive], kind="stable")], zeros])


class _PassageFetch:
    """The passages at ``rows`` in order, read a batch at a time from a table that has ``rows`` (one query
    for the first few candidates, not one per candidate); a list is simply indexed."""

    def __init__(self, passages: Sequence[Passage], rows: list[int], batch: int) -> None:
        self.passages, self.rows_of, self.order, self.batch = (
            passages,
            getattr(passages, "rows", None),
            rows,
            batch,
        )
        self.got: list[Passage] = []

    def at(self, i: int) -> Passage:
        if self.rows_of is None:
            return self.passages[self.order[i]]
        while i >= len(self.got):
            start = len(self.got)
            self.got.extend(self.rows_of(self.order[start : start + max(self.batch, start)]))
        return self.got[i]


def merge_passages(a: Passage, b: Passage) -> Passage:
    """One passage spanning two overlapping passages of a section (both texts are slices of one document).

    Its id follows the passage id scheme but is not in the index when it spans several indexed passages;
    ``Hit.merged`` lists the indexed ones folded in, and ``sentences`` keeps every sentence's offsets.
    """
    first, last = (a, b) if (a.start, -a.end) <= (b.start, -b.end) else (b, a)
    if last.end <= first.end:
        return first
    text = first.text + last.text[first.end - last.start :]
    return replace(
        first,
        id=passage_id(first.doc_id, first.start, last.end),
        end=last.end,
        text=text,
        refs=sorted(set(first.refs) | set(last.refs)),
        sentences=sorted(set(first.sentences) | set(last.sentences)),
        tokens=0,  # not counted: a merged span may exceed the model's window
    )


def _overlaps(a: Passage, b: Passage) -> bool:
    """Same document and section, and the ranges overlap or touch (overlapping chunks of one text)."""
    return a.doc_id == b.doc_id and a.section_id == b.section_id and a.start <= b.end and b.start <= a.end


class SentenceMatcher:
    """Each passage's sentence rows, padded, so the best sentence cosine of many candidates is one product."""

    def __init__(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        self.vectors = vectors  # sentence vectors (sentence row order)
        self.rows = rows  # passage row -> its sentence rows, -1 padded

    @classmethod
    def for_index(cls, index: PassageIndex) -> SentenceMatcher | None:
        vectors = getattr(index, "sentence_vectors", None)
        sentence_rows = getattr(index, "sentence_rows", None)
        if vectors is None or sentence_rows is None:  # a benchmark index without sentence vectors
            return None
        stored = getattr(index, "passage_sentences", None)
        if stored is not None:  # the build's table of them (mapped; vectors are read by row)
            return cls(vectors, stored)
        lists = [sentence_rows(p) for p in index.passages]
        rows = np.full((len(lists), max((len(x) for x in lists), default=0) or 1), -1, dtype=np.int64)
        for i, x in enumerate(lists):
            rows[i, : len(x)] = x
        return cls(np.ascontiguousarray(vectors, dtype=np.float32), rows)

    def best(self, passage_rows: np.ndarray, qvec: np.ndarray) -> np.ndarray:
        """Highest cosine to ``qvec`` among each passage's sentences (-1 for a passage without any)."""
        rows = np.asarray(self.rows[passage_rows], dtype=np.int64)
        present = rows >= 0  # only real sentences are read (the vectors may be a float16 file read by row)
        sims = np.full(rows.shape, -1.0, dtype=np.float32)
        sims[present] = np.asarray(self.vectors[rows[present]], dtype=np.float32) @ qvec.astype(np.float32)
        return sims.max(axis=1).astype(np.float64)
