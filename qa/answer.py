"""The extractive answer: score the sentences of the retrieved passages, cite them, or abstain honestly.

A sentence's score is its cosine similarity to the question plus the IDF-weighted share of the
question's terms it contains. Three checks decide whether to answer:

1. a thing the question names (a drug, trial, gene, disease; see qa.answering.entities) that no document
   names makes it unanswerable ("unknown_entity");
2. evidence: the best sentence's score, counted only as far as its passage names what the question names,
   scaled by how much of the question the corpus knows, where ordinary words the papers never use (a lay
   paraphrase) count for little and named things fully; below the threshold: "no_evidence";
3. a question asking for a figure (qa.answering.kinds) about something the documents name needs a
   retrieved sentence near that name holding a figure of the asked kind, else "value_not_reported",
   quoting where the documents name it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from qa.answering.entities import Entity, Mentions, names_in, question_entities
from qa.answering.kinds import QuestionKind, classify, holds
from qa.facts.studies import NAME_BEFORE, NAME_NCT, NCT_RE
from qa.index.keyword import tokenize
from qa.index.store import SearchIndex, Sentence
from qa.retrieval import Hit

if TYPE_CHECKING:
    from qa.facts.vocab import Vocabulary

LAY_DISCOUNT = 0.35  # weight of an unknown ordinary word against an unknown name, see coverage
ENTITY_FLOOR = 0.5  # share of a sentence's score kept when its passage names nothing the question names
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


REASONS = ("answered", "no_evidence", "unknown_entity", "value_not_reported", "no_matching_trial")
# Reasons that say what the documents lack, not just that the evidence is weak: the answer stands alone.
HONEST_NEGATIVES = frozenset({"unknown_entity", "value_not_reported"})


@dataclass
class Answer:
    text: str
    abstained: bool
    evidence: float
    coverage: float
    sentences: list[ScoredSentence] = field(default_factory=list)  # cited; when abstaining, where it is named
    hits: list[Hit] = field(default_factory=list)
    kind: str = "other"  # what the question asks for: one of qa.answering.kinds.KINDS
    reason: str = "answered"  # one of REASONS
    entities: list[str] = field(default_factory=list)  # what the question names, as written
    unknown: list[str] = field(default_factory=list)  # of those, what no document names
    named: list[Entity] = field(default_factory=list)  # of those, what the documents name
    asked: QuestionKind = field(default_factory=lambda: QuestionKind("other"))  # kind, with its measure


@dataclass(frozen=True)
class Translation:
    """A lay phrase of the question (its tokens) and the tokens of the technical terms it stands for."""

    lay: frozenset[str]
    technical: frozenset[str]


def translations(lay_phrases: Iterable[tuple[str, Iterable[str]]]) -> list[Translation]:
    """Token sets of the lexicon's lay phrases in a question (see qa.lexicon.Lexicon.lay_phrases)."""
    out = []
    for phrase, terms in lay_phrases:
        lay = frozenset(tokenize(phrase))
        technical = frozenset(t for term in terms for t in tokenize(term)) - lay
        if lay and technical:
            out.append(Translation(lay, technical))
    return out


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
        self._mentions: Mentions | None = None

    def mentions(self, index: SearchIndex) -> Mentions:
        """Which sentences hold each token: the build's table, or (an index without one) an inverted index
        made on first use by one pass over the sentence table."""
        if self._mentions is None:
            built = getattr(index, "mentions", None)
            # tokens only: the traits of every sentence are not kept (scoring keeps those it reads)
            self._mentions = (
                Mentions.from_index(built)
                if built is not None
                else Mentions.from_sentences(
                    frozenset(tokenize(index.sentence_text(s))) for s in index.sentences
                )
            )
        return self._mentions

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

    def coverage(
        self,
        weights: dict[str, float],
        named: frozenset[str] = frozenset(),
        translated: frozenset[str] = frozenset(),
    ) -> float:
        """IDF-weighted share of the question's terms that occur anywhere in the corpus.

        Ordinary words the corpus never uses (not among the ``named`` tokens) weigh LAY_DISCOUNT of
        their weight: a paraphrase in other words than the papers' should lower confidence, not veto it.
        Words of a lay phrase the lexicon translates (``translated``) count as known."""
        known = sum(w for t, w in weights.items() if t in self.idf or t in translated)
        unknown = sum(
            w * (1.0 if t in named else LAY_DISCOUNT)
            for t, w in weights.items()
            if t not in self.idf and t not in translated
        )
        total = known + unknown
        return known / total if total else 0.0


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
    translated: list[Translation] | None = None,
) -> list[ScoredSentence]:
    """Every sentence of ``hits`` scored against the question; a sentence holding a technical term of a lay
    phrase the question uses (``translated``) counts as holding that phrase's words."""
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
    cosines = (index.sentence_matrix(rows) @ qvec).tolist()  # one product for every candidate sentence
    total = sum(weights.values())
    scored: list[ScoredSentence] = []
    for row, hit_index, cosine in zip(rows, owners, cosines, strict=True):
        t = terms.sentence(index, row)
        present = t.tokens
        for tr in translated or ():
            if tr.technical & t.tokens:
                present = present | tr.lay
        lexical = lexical_overlap(weights, present, total)
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
        vec = index.sentence_matrix([cand.sentence.row])[0]
        if (
            chosen
            and float((index.sentence_matrix([c.sentence.row for c in chosen]) @ vec).max()) > NEAR_DUPLICATE
        ):
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
    vocab: Vocabulary | None = None,
    lay_phrases: Iterable[tuple[str, Iterable[str]]] = (),
    referenced: Collection[str] = (),
) -> Answer:
    """Cite the 1-4 sentences that best answer ``question`` from ``hits``, or abstain (see the module doc).

    ``vocab``: the facts vocabulary, whose drug, class, target and condition names (and aliases) count
    as things the question names besides the shape-detected ones. ``lay_phrases``: the lexicon's lay
    phrases in the question with their technical terms (Lexicon.lay_phrases), which count as the
    question's words where a sentence uses them. ``referenced``: ids of the passages a figure, table or
    section reference in the question resolves to; when some are among ``hits`` they answer it."""
    kind = classify(question)
    entities = question_entities(question, vocab)
    mentions = terms.mentions(index)
    known = [mentions.known(e) for e in entities]
    unknown = [e for e, k in zip(entities, known, strict=True) if e.strong and not k]
    named = [e for e, k in zip(entities, known, strict=True) if k]
    base = Answer(
        ABSTAIN_MESSAGE,
        True,
        0.0,
        0.0,
        [],
        hits,
        kind.kind,
        "no_evidence",
        [e.text for e in entities],
        [e.text for e in unknown],
        named,
        kind,
    )
    if unknown:
        base.reason = "unknown_entity"
        base.text = f"The indexed documents do not mention {_join(e.text for e in unknown)}."
        return base
    weights = terms.weights(question)
    named_tokens = frozenset(t for e in entities for t in question_tokens(e.text)) | scope_tokens(question)
    translated = translations(lay_phrases)
    base.coverage = coverage = terms.coverage(
        weights, named_tokens, frozenset(t for tr in translated for t in tr.lay)
    )
    scored = score_sentences(index, terms, hits, qvec, weights, question_intent(question), translated)
    if not scored:
        return base
    share = _entity_shares(index, terms, hits, named)
    for s in scored:
        s.score *= ENTITY_FLOOR + (1 - ENTITY_FLOOR) * share[s.hit_index]
    scored.sort(key=lambda s: -s.score)
    base.evidence = evidence = scored[0].score * coverage
    named_by_reference = _referenced_hits(hits, referenced)
    if named_by_reference:  # "What does Figure 2 show?": the caption it names answers, however worded
        scored = [s for s in scored if s.hit_index in named_by_reference]
    elif evidence < threshold:
        return base
    if kind.kind in ("value", "date") and named:
        supported = [s for s in scored if _supports(index, terms, s, kind, named)]
        if not supported:
            return _not_reported(index, terms, base, kind, scored, named)
        scored = supported + [s for s in scored if s not in supported]
    elif kind.kind in ("value", "date") and not any(holds(kind, s.text) for s in scored[:VALUE_DEPTH]):
        base.reason = "value_not_reported"  # nothing near the top holds a figure of the asked kind
        base.text = f"The indexed documents report no {_asked(kind)} that answers this question."
        return base
    chosen = select(index, scored)
    text = " ".join(f"{c.text} [{c.hit_index + 1}]" for c in chosen)
    base.text, base.abstained, base.sentences, base.reason = text, False, chosen, "answered"
    return base


# "... in plants?", "... in children?", "... in the gut?": the closing phrase that says where the question asks.
_SCOPE = re.compile(
    r"\b(?:in|among|for)\s+(?:the\s+|a\s+|an\s+)?(?:[\w'-]+\s+){0,3}(?P<head>[\w'-]+)\s*[?.!]*\s*$"
)


def scope_tokens(question: str) -> frozenset[str]:
    """The head word of the question's closing "in ..." phrase: where the question asks about. An ordinary
    word the documents never use there ("How does CRISPR work in plants?") is counted like a name in the
    coverage, not as a lay paraphrase: the documents do not cover that scope."""
    m = _SCOPE.search(question)
    return frozenset(question_tokens(m.group("head"))) if m else frozenset()


def _referenced_hits(hits: list[Hit], referenced: Collection[str]) -> set[int]:
    """Positions of the hits whose passage (or a passage merged into it) a question's reference names."""
    if not referenced:
        return set()
    wanted = set(referenced)
    return {i for i, h in enumerate(hits) if h.passage.id in wanted or wanted.intersection(h.merged)}


def _asked(kind: QuestionKind) -> str:
    return kind.measure.name if kind.measure else "date"


def _join(names: Iterable[str]) -> str:
    items = list(dict.fromkeys(names))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _entity_shares(
    index: SearchIndex, terms: QuestionTerms, hits: list[Hit], named: list[Entity]
) -> list[float]:
    """For each hit, the share of the question's named things its passage names (1.0 when it names none)."""
    if not named:
        return [1.0] * len(hits)
    out = []
    for hit in hits:
        tokens = frozenset(
            t for row in index.sentence_rows(hit.passage) for t in terms.sentence(index, row).tokens
        )
        out.append(sum(names_in(e, tokens) for e in named) / len(named))
    return out


VALUE_DEPTH = 5  # a question naming nothing needs its figure among this many best sentences
WINDOW = 2  # a figure may follow the sentence naming its trial by this many sentences


def _names_a_study(text: str) -> bool:
    return bool(NCT_RE.search(text) or NAME_NCT.search(text) or NAME_BEFORE.search(text))


def _window_tokens(index: SearchIndex, terms: QuestionTerms, row: int) -> frozenset[str]:
    """Tokens of a sentence and the WINDOW before it in the same document, back to the nearest sentence
    that names a study: a figure after "IOV-COM-202 (NCT03645928) is ..." is that study's, not an earlier
    one's."""
    doc = terms.sentence(index, row).sentence.doc_id
    rows = [row]
    for r in range(row - 1, max(-1, row - WINDOW - 1), -1):
        if terms.sentence(index, r).sentence.doc_id != doc or _names_a_study(
            terms.sentence(index, r + 1).text
        ):
            break
        rows.append(r)
    return frozenset(t for r in rows for t in terms.sentence(index, r).tokens)


def _rarest(terms: QuestionTerms, named: list[Entity]) -> Entity:
    """The most specific named thing: the one whose rarest word (for "InnovaTIL-01" its joined form, not
    "01") the fewest passages hold: a trial over its drug."""
    return max(
        named, key=lambda e: max((terms.idf.get(t, 0.0) for t in question_tokens(e.text)), default=0.0)
    )


def _supports(
    index: SearchIndex, terms: QuestionTerms, s: ScoredSentence, kind: QuestionKind, named: list[Entity]
) -> bool:
    """Whether a sentence holds the asked figure and names (or follows a sentence naming) the question's
    most specific named thing."""
    return holds(kind, s.text) and names_in(
        _rarest(terms, named), _window_tokens(index, terms, s.sentence.row)
    )


def _not_reported(
    index: SearchIndex,
    terms: QuestionTerms,
    base: Answer,
    kind: QuestionKind,
    scored: list[ScoredSentence],
    named: list[Entity],
) -> Answer:
    """Abstain, quoting where the retrieved passages name the question's most specific named thing."""
    entity = _rarest(terms, named)
    base.reason = "value_not_reported"
    base.text = f"The indexed documents name {entity.text} but report no {_asked(kind)} for it."
    base.sentences = [s for s in scored if names_in(entity, terms.sentence(index, s.sentence.row).tokens)][:2]
    if base.sentences:
        base.text += " " + " ".join(f"{c.text} [{c.hit_index + 1}]" for c in base.sentences)
    return base
