"""Keyword index: BM25 (bm25s) over a tokenizer that keeps biomedical identifiers such as PD-L1 and SD-101."""

from __future__ import annotations

import logging
import re
from array import array
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from breame.data.spelling_constants import BRITISH_ENGLISH_SPELLINGS

# British spellings meet American ones (tumour/tumor, randomised/randomized, haematological/hematological):
# breame's 1,730 word pairs, applied to every word before stemming, on the documents' side and the question's.
_AMERICAN: dict[str, str] = {b.lower(): a.lower() for b, a in BRITISH_ENGLISH_SPELLINGS.items()}

# BM25 parameters chosen on SciFact train claims (k1 0.9-1.2 and b 0.4-0.6 all within 0.003 nDCG@10; the
# Lucene default 1.2/0.75 was 0.0015-0.004 lower alone and 0.005 lower fused). Anserini uses 0.9/0.4 too.
K1, B = 0.9, 0.4
# Bump when tokenize() changes: the manifest records it, and an index built with other tokens is rebuilt.
TOKENIZER_VERSION = 3

_TOKEN = re.compile(r"[a-z0-9α-ωβγ]+(?:[-+/.][a-z0-9α-ωβγ]+)*\+?")
_STEMMER = Stemmer.Stemmer("english")
# bm25s sets its own logger to DEBUG when imported, so "Building index from tokens" reached `qa index --quiet`
logging.getLogger("bm25s").setLevel(logging.WARNING)
STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN) | {"which", "what", "how", "does", "do", "did"}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The stem of a lower-cased word, spelled the American way first; other tokens as they are."""
    return _STEMMER.stemWord(_AMERICAN.get(word, word)) if word.isalpha() else word


_GREEK = str.maketrans({"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "κ": "kappa"})


def _compound(piece: str) -> list[str]:
    """'pd-l1' -> pdl1, pd, l1; 'anti-pd-1' -> antipd1, antipd, pd1, anti, pd.

    The joined forms let spelling variants meet (PD-L1 / PDL1, miR-125b / miR-125-b, IFN-γ / IFNγ);
    the parts let a compound match its components.
    """
    parts = [_AMERICAN.get(p, p) for p in re.split(r"[-+]", piece) if p]
    if len(parts) == 1:
        return [stem(parts[0])] if parts[0] not in STOPWORDS and len(parts[0]) > 1 else []
    out = [stem("".join(parts))]
    if len(parts) > 2:
        out.extend(stem(a + b) for a, b in zip(parts, parts[1:], strict=False))
    out.extend(stem(p) for p in parts if len(p) > 1 and p not in STOPWORDS)
    return out


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed tokens without stopwords; identifiers also yield their joined form and parts."""
    out: list[str] = []
    for match in _TOKEN.finditer(text.lower().translate(_GREEK)):
        token = match.group(0).rstrip(".+")  # a sentence's full stop; CD8+ is CD8
        for piece in token.split("/"):  # PD-1/PD-L1 names two things
            if "-" in piece or "+" in piece:
                out.extend(_compound(piece))
            elif piece and piece not in STOPWORDS and (len(piece) > 1 or piece.isdigit()):
                out.append(stem(piece))
    return out


class _TokenIds:
    """Every text's token ids as bm25s reads them (``ids``, iterated once per pass, and ``vocab``), kept as
    one flat array: each text's list is made as bm25s reaches it."""

    def __init__(self, flat: np.ndarray, ends: np.ndarray, vocab: dict[str, int]) -> None:
        self.flat, self.ends, self.vocab = flat, ends, vocab
        self.ids = self

    def __len__(self) -> int:
        return len(self.ends)

    def __iter__(self) -> Iterator[list[int]]:
        start = 0
        for end in self.ends.tolist():
            yield self.flat[start:end].tolist()
            start = end


class KeywordIndex:
    def __init__(self, model: bm25s.BM25) -> None:
        self.model = model
        self.vocab: dict[str, int] = model.vocab_dict

    @classmethod
    def build(cls, texts: Iterable[str], *, k1: float = K1, b: float = B) -> KeywordIndex:
        """BM25 over ``texts``, read once as they come: each is tokenised into one flat array of token ids
        (4 bytes a token; bm25s given lists of token strings holds those and a list of ids per text too).
        Token ids are given in order of first appearance."""
        vocab: dict[str, int] = {}
        ids, ends = array("i"), array("q")
        for text in texts:
            ids.extend(vocab.setdefault(t, len(vocab)) for t in tokenize(text) or [""])
            ends.append(len(ids))
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index(
            _TokenIds(np.frombuffer(ids, dtype=np.intc), np.frombuffer(ends, dtype=np.int64), vocab),
            show_progress=False,
        )
        return cls(model)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (zeros when no query term is known)."""
        tokens = [t for t in tokenize(query) if t in self.vocab]
        if not tokens:
            return np.zeros(self.model.scores["num_docs"], dtype=np.float32)
        return np.asarray(self.model.get_scores(tokens), dtype=np.float32)

    def rows_with(self, token: str) -> np.ndarray:
        """The rows holding ``token`` (one of ``tokenize``'s), ascending: its postings in the score matrix."""
        t = self.vocab.get(token)
        if t is None:
            return np.zeros(0, dtype=np.int64)
        indptr = self.model.scores["indptr"]
        return np.sort(np.asarray(self.model.scores["indices"][indptr[t] : indptr[t + 1]], dtype=np.int64))

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.scores(query)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        keep = scores[top] > 0
        return scores[top][keep], top[keep]

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = True) -> KeywordIndex:
        """The saved index, its score matrix memory-mapped by default (pages read as queries touch them)."""
        model = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False, verbosity=0)
        for name in ("data", "indices", "indptr"):  # plain arrays over the map: np.memmap slices cost more
            model.scores[name] = np.asarray(model.scores[name])
        return cls(model)
