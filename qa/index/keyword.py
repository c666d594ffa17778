"""Keyword index: BM25 (bm25s) over a tokenizer that keeps biomedical identifiers such as PD-L1 and SD-101."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_TOKEN = re.compile(r"[a-z0-9α-ωβγ]+(?:[-+/.][a-z0-9α-ωβγ]+)*\+?")
_STEMMER = Stemmer.Stemmer("english")
STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN) | {"which", "what", "how", "does", "do", "did"}


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word) if word.isalpha() else word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed tokens; a compound like 'pd-l1' yields itself and its parts."""
    out: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group(0).rstrip(".")
        if "-" in token or "/" in token or "." in token:
            out.append(token)
            out.extend(_stem(p) for p in re.split(r"[-+/.]", token) if len(p) > 1 and p not in STOPWORDS)
        elif token not in STOPWORDS and (len(token) > 1 or token.isdigit()):
            out.append(_stem(token))
    return out


class KeywordIndex:
    def __init__(self, model: bm25s.BM25) -> None:
        self.model = model
        self.vocab: dict[str, int] = model.vocab_dict

    @classmethod
    def build(cls, texts: list[str], *, k1: float = 1.2, b: float = 0.75) -> KeywordIndex:
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index([tokenize(t) or [""] for t in texts], show_progress=False)
        return cls(model)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (zeros when no query term is known)."""
        tokens = [t for t in tokenize(query) if t in self.vocab]
        if not tokens:
            return np.zeros(self.model.scores["num_docs"], dtype=np.float32)
        return np.asarray(self.model.get_scores(tokens), dtype=np.float32)

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
    def load(cls, folder: Path) -> KeywordIndex:
        return cls(bm25s.BM25.load(str(folder), show_progress=False, verbosity=0))
