"""The extractive answer: score the sentences of the retrieved passages, cite them, or abstain honestly.

A sentence's score is its cosine similarity to the question plus the IDF-weighted share of the
question's terms it contains. Evidence is the best sentence's score scaled by how much of the
question the corpus knows at all: a question about terms no document mentions ("warfarin",
"Hodgkin") is not answered from loosely similar sentences.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from qa.index.keyword import tokenize
from qa.index.store import SearchIndex, Sentence
from qa.retrieval import Hit

LEXICAL_WEIGHT = 0.5  # one global weight of lexical overlap against cosine similarity
MAX_SENTENCES = 4
KEEP_RATIO = 0.85  # further sentences must score at least this share of the best one
NEAR_DUPLICATE = 0.92  # cosine above which a second sentence adds nothing
ABSTAIN_MESSAGE = "The indexed documents do not answer this question."
# Words that shape a question but are not what it is about.
QUESTION_WORDS = frozenset(
    tokenize(
        "what which who whom whose when where why how is are was were do does did can could should would "
        "tell me about show list give describe explain there any some many much the a an of in on for "
        "to with and or by from as at it its this that these those them they their report reported"
    )
)


@dataclass
class ScoredSentence:
    sentence: Sentence
    text: str
    cosine: float
    lexical: float
    score: float
    hit_index: int  # position of its passage in the hit list


@dataclass
class Answer:
    text: str
    abstained: bool
    evidence: float
    coverage: float
    sentences: list[ScoredSentence] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)


@dataclass(frozen=True)
class SentenceTraits:
    sentence: Sentence
    text: str
    tokens: frozenset[str]
    shape: float  # see _shape_factor
    has_number: bool  # a reported figure (NUMBER)
    defines: frozenset[str]  # words before an opening copula ("X (aliases) is a ..."), see defined_words


@lru_cache(maxsize=1024)
def question_tokens(question: str) -> tuple[str, ...]:
    """``tokenize(question)``, worked out once for the several readers of one question."""
    return tuple(tokenize(question))


class QuestionTerms:
    """IDF weights of a question's content terms, with terms unknown to the corpus weighted highest."""

    def __init__(self, index: SearchIndex) -> None:
        self.vocab = index.keyword.vocab
        n_docs = max(1, len(index.passages))
        indptr = index.keyword.model.scores["indptr"]  # CSC over vocabulary ids: column length = df
        df = {t: int(indptr[i + 1] - indptr[i]) for t, i in self.vocab.items() if t}
        self.idf = {t: math.log(1 + (n_docs - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self.unknown_idf = math.log(1 + (n_docs + 0.5) / 0.5)

        self._sentences: dict[int, SentenceTraits] = {}

    def sentence(self, index: SearchIndex, row: int) -> SentenceTraits:
        """What scoring needs of a stored sentence, worked out once (sentences never change while loaded)."""
        traits = self._sentences.get(row)
        if traits is None:
            sentence = index.sentences[row]
            text = index.sentence_text(sentence)
            traits = self._sentences[row] = SentenceTraits(
                sentence,
                text,
                frozenset(tokenize(text)),
                _shape_factor(text, sentence.kind),
                bool(NUMBER.search(text)),
                defined_words(text),
            )
        return traits

    def weights(self, question: str) -> dict[str, float]:
        terms = [t for t in question_tokens(question) if t not in QUESTION_WORDS]
        return {t: self.idf.get(t, self.unknown_idf) for t in dict.fromkeys(terms)}

    def coverage(self, weights: dict[str, float]) -> float:
        """IDF-weighted share of the question's terms that occur anywhere in the corpus."""
        total = sum(weights.values())
        if not total:
            return 0.0
        return sum(w for t, w in weights.items() if t in self.idf) / total


def lexical_overlap(weights: dict[str, float], present: frozenset[str], total: float | None = None) -> float:
    """IDF-weighted share of the question's terms in ``present`` (``total``: the sum of ``weights``)."""
    total = sum(weights.values()) if total is None else total
    if not total:
        return 0.0
    return sum(w for t, w in weights.items() if t in present) / total


DEFINITION = re.compile(
    r"^\s*(?:what|who)\s+(?:is|are|was|were)\s+(?:an?\s+|the\s+)?(?P<x>.+?)\s*\??\s*$", re.I
)
DEFINING = re.compile(r"\b(?:is|are|was|were)\s+(?:an?|the|one|another)\b", re.I)
OUTCOME_WORDS = frozenset(
    tokenize(
        "show showed shown report reported result results outcome outcomes efficacy effective response orr pfs os survival rate"
    )
)
NUMBER = re.compile(r"\d+(?:\.\d+)?\s*(?:%|months?|weeks?|patients|-fold)|\(\d+/\d+\)")
INTENT_BONUS = 0.15


@dataclass
class Intent:
    """What kind of sentence answers the question: a definition of a subject, or reported numbers."""

    subject: set[str] = field(default_factory=set)
    wants_numbers: bool = False


def question_intent(question: str) -> Intent:
    intent = Intent()
    m = DEFINITION.match(question)
    if m:
        intent.subject = set(tokenize(m.group("x"))) - QUESTION_WORDS
    intent.wants_numbers = bool(OUTCOME_WORDS & set(question_tokens(question)))
    return intent


def defined_words(text: str) -> frozenset[str]:
    """The words a sentence opening "X (aliases) is a ..." defines: those before the copula in its head."""
    head = text[:120]
    copula = DEFINING.search(head)
    return frozenset(tokenize(head[: copula.start()])) if copula else frozenset()


def intent_bonus(intent: Intent, sentence: SentenceTraits) -> float:
    bonus = 0.0
    if intent.subject & sentence.defines:
        bonus += INTENT_BONUS  # "X (aliases) is a ..." defines X
    if intent.wants_numbers and sentence.has_number:
        bonus += INTENT_BONUS
    return bonus


def _shape_factor(text: str, kind: str) -> float:
    """Fragments (table cells, headings) make poor answers on their own."""
    words = len(text.split())
    factor = min(1.0, 0.5 + words / 20)
    return factor * (0.85 if kind == "table" else 1.0)


def score_sentences(
    index: SearchIndex,
    terms: QuestionTerms,
    hits: list[Hit],
    qvec: np.ndarray,
    weights: dict[str, float],
    intent: Intent | None = None,
) -> list[ScoredSentence]:
    intent = intent or Intent()
    rows: list[int] = []
    owners: list[int] = []  # the hit each sentence is read from (its first hit, when hits share one)
    seen: set[int] = set()
    for hit_index, hit in enumerate(hits):
        for row in index.sentence_rows(hit.passage):
            if row not in seen:
                seen.add(row)
                rows.append(row)
                owners.append(hit_index)
    if not rows:
        return []
    cosines = (index.sentence_vectors[rows] @ qvec).tolist()  # one product for every candidate sentence
    total = sum(weights.values())
    scored: list[ScoredSentence] = []
    for row, hit_index, cosine in zip(rows, owners, cosines, strict=True):
        t = terms.sentence(index, row)
        lexical = lexical_overlap(weights, t.tokens, total)
        score = (cosine + LEXICAL_WEIGHT * lexical + intent_bonus(intent, t)) * t.shape
        scored.append(ScoredSentence(t.sentence, t.text, cosine, lexical, score, hit_index))
    scored.sort(key=lambda s: -s.score)
    return scored


def select(
    index: SearchIndex, scored: list[ScoredSentence], limit: int = MAX_SENTENCES
) -> list[ScoredSentence]:
    """The best sentence, then others nearly as good that say something different."""
    chosen: list[ScoredSentence] = []
    for cand in scored:
        if len(chosen) >= limit:
            break
        if chosen and cand.score < KEEP_RATIO * chosen[0].score:
            break
        vec = index.sentence_vectors[cand.sentence.row]
        if any(float(vec @ index.sentence_vectors[c.sentence.row]) > NEAR_DUPLICATE for c in chosen):
            continue
        chosen.append(cand)
    return chosen


def extract_answer(
    index: SearchIndex,
    terms: QuestionTerms,
    question: str,
    qvec: np.ndarray,
    hits: list[Hit],
    *,
    threshold: float,
) -> Answer:
    """Cite the 1-4 sentences that best answer ``question`` from ``hits``, or abstain."""
    weights = terms.weights(question)
    coverage = terms.coverage(weights)
    scored = score_sentences(index, terms, hits, qvec, weights, question_intent(question))
    best = scored[0].score if scored else 0.0
    evidence = best * coverage
    if not scored or evidence < threshold:
        return Answer(ABSTAIN_MESSAGE, True, evidence, coverage, [], hits)
    chosen = select(index, scored)
    text = " ".join(f"{c.text} [{c.hit_index + 1}]" for c in chosen)
    return Answer(text, False, evidence, coverage, chosen, hits)
