"""What a question names (drugs, trials, genes, diseases) and whether the documents name it too.

A named thing the documents never mention makes a question unanswerable however similar its sentences
look ("cemiplimab", "KRAS G12C"); an ordinary word they never use ("killer T cells") is only a paraphrase.
Names come from the vocabulary when the caller has one, and from the shape of a word: code-shaped
(IMpower150, G12C, CD47, PD-1), upper case inside it (KRAS, ESMO), capitalised inside the question
(Hodgkin, France), or an international non-proprietary name stem (-mab, -nib, ...).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

import numpy as np

from qa.index.keyword import KeywordIndex, tokenize

if TYPE_CHECKING:
    from qa.facts.vocab import Vocabulary

VOCABULARY_KINDS = {"drug", "class", "target", "condition"}
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-/+.]*[A-Za-z0-9+]|[A-Za-z0-9]")
# WHO INN stems of biologics and small molecules: a word ending so is a drug's name, known or not.
_INN_STEM = re.compile(
    r"(?:mab|nib|lib|parib|ciclib|cept|fusp|leucel|gene|stat|platin|taxel|rubicin|limus|tide|kin)$"
)
_MIN_INN_LENGTH = 8  # "protein" or "cytokine" are not drugs


@dataclass(frozen=True)
class Entity:
    """A thing the question names: as written, and the other names it goes by (canonical, aliases)."""

    text: str
    names: tuple[str, ...] = ()
    source: str = "shape"  # "vocabulary" or "shape"
    strong: bool = True  # unknown to the documents, it makes the question unanswerable (see _shaped)

    def spellings(self) -> tuple[str, ...]:
        return (self.text, *self.names)


_ROMAN = re.compile(r"^[IVX]+$")


def _shaped(word: str, first: bool) -> bool | None:
    """True: a name; False: a name only weakly (mixed case such as IMpower or PEGylated, which may be an
    ordinary word spelt with an acronym); None: an ordinary word."""
    core = word[:-2] if word.endswith(("'s", "’s")) else word
    if len(core) < 2 or _ROMAN.match(core):
        return None  # phase II, type I
    letters = [c for c in core if c.isalpha()]
    if not letters:
        return None  # a number is a value, not a name
    if any(c.isdigit() for c in core):
        return True  # G12C, CD47, LN-145, IMpower150
    if any(c.isupper() for c in core[1:]):
        return all(not c.islower() for c in core)  # KRAS, ESMO (strong); IMpower, PEGylated (weak)
    if core[0].isupper() and not first:
        return True  # Hodgkin, France
    if core.islower() and len(core) >= _MIN_INN_LENGTH and _INN_STEM.search(core):
        return True
    return None


def question_entities(question: str, vocab: Vocabulary | None = None) -> list[Entity]:
    """The named things in ``question``: vocabulary mentions first, then shape-detected words."""
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []
    if vocab is not None:
        for m in vocab.find(question, kinds=VOCABULARY_KINDS):
            entry = vocab.entries.get(m.kind, {}).get(m.name)
            names: tuple[str, ...] = (m.name, *(entry.synonyms if entry else ()))  # "glioblastoma", "GBM"
            drugs = (
                {m.name} if m.kind == "drug" else vocab.class_members(m.name) if m.kind == "class" else set()
            )
            for d in sorted(drugs & set(vocab.drugs)):  # a class is named when one of its members is
                names += (d, *vocab.drugs[d].aliases)
            found.append(Entity(m.text, names, "vocabulary"))
            taken.append((m.start, m.end))
    previous_end = 0
    for w in _WORD.finditer(question):
        word = w.group(0).rstrip(".")
        gap = question[previous_end : w.start()].rstrip(" \"'“‘(")
        first = previous_end == 0 or gap[-1:] in (".", "?", "!", ":")  # a sentence's first word
        previous_end = w.end()
        if any(a < w.end() and w.start() < b for a, b in taken):
            continue
        shape = _shaped(word, first)
        if shape is not None:
            found.append(Entity(word, strong=shape))
    return found


def head_tokens(name: str) -> frozenset[str]:
    """One token per word of ``name``: a compound's joined form (PD-L1 -> pdl1), else the stemmed word."""
    out: set[str] = set()
    for word in name.split():
        tokens = tokenize(word)
        if tokens:
            out.add(tokens[0])
    return frozenset(out)


class Mentions:
    """Which sentences of the corpus hold a token: an inverted index over sentence tokens, either the
    build's own (``from_index``: postings memory-mapped, nothing built at load) or one built in memory from
    the sentences (``from_sentences``: an index without that table, and the reference the test compares)."""

    def __init__(self, rows_with: Callable[[str], np.ndarray], tokens: Callable[[], Iterable[str]]) -> None:
        self.rows_with = rows_with  # token -> its sentence rows, ascending
        self.tokens = tokens  # every token of the corpus' sentences
        # the tokens in order, for prefix look-ups (made when first asked)
        self._sorted: list[str] | None = None

    @classmethod
    def from_index(cls, index: KeywordIndex) -> Mentions:
        return cls(index.rows_with, lambda: index.vocab)

    @classmethod
    def from_sentences(cls, sentence_tokens: Iterable[frozenset[str]]) -> Mentions:
        found: dict[str, list[int]] = {}
        for row, tokens in enumerate(sentence_tokens):
            for t in tokens:
                found.setdefault(t, []).append(row)
        rows = {t: np.array(r, dtype=np.int64) for t, r in found.items()}
        empty = np.zeros(0, dtype=np.int64)
        return cls(lambda t: rows.get(t, empty), lambda: rows)

    def sentences_naming(self, entity: Entity) -> set[int]:
        """Rows of the sentences holding every word of one of the entity's spellings."""
        out: set[int] = set()
        for spelling in entity.spellings():
            heads = head_tokens(spelling)
            if not heads:
                continue
            out.update(int(r) for r in reduce(np.intersect1d, (self.rows_with(t) for t in heads)))
        return out

    def known(self, entity: Entity) -> bool:
        """Named in one sentence; a code stem counts when the documents write it with digits (ESMO2021).

        Asked of every entity of every question, so it stays small at 10^6 passages: the postings are
        intersected shortest first and left as arrays (a common word's run 10^5 rows there), and the code
        stem is a binary search over the sorted tokens, not a scan of them."""
        if any(self._names(spelling) for spelling in entity.spellings()):
            return True
        heads = head_tokens(entity.text)
        if entity.source == "shape" and len(heads) == 1:
            (head,) = heads
            if self._sorted is None:
                self._sorted = sorted(self.tokens())
            at = bisect_left(self._sorted, head)
            while at < len(self._sorted) and self._sorted[at].startswith(head):
                if self._sorted[at][len(head) : len(head) + 1].isdigit():
                    return True
                at += 1
        return False

    def _names(self, spelling: str) -> bool:
        """Whether one sentence holds every word of ``spelling``."""
        heads = head_tokens(spelling)
        if not heads:
            return False
        postings = sorted((self.rows_with(t) for t in heads), key=len)
        if not len(postings[0]):
            return False
        return bool(len(reduce(lambda a, b: np.intersect1d(a, b, assume_unique=True), postings)))


def names_in(entity: Entity, tokens: frozenset[str]) -> bool:
    """Whether a text with ``tokens`` names the entity by one of its spellings."""
    return any((heads := head_tokens(s)) and heads <= tokens for s in entity.spellings())
