"""Keyword index: BM25 (bm25s) over a tokenizer that keeps biomedical identifiers such as PD-L1 and SD-101."""

from __future__ import annotations

import logging
import math
import mmap
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


# Tokens read (and postings scored) at a time by ``KeywordIndex.write``. Its peak anonymous memory over the
# scale benchmark's 10^6 passages: 173-193 MB (bm25s's whole build: 1.26 GB); bench/build_memory.py.
WRITE_BATCH_TOKENS = 1_000_000


def _postings(ids: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch's distinct (text, token) pairs in text then token order, with each pair's count."""
    docs = np.repeat(np.arange(len(ends), dtype=np.int64), np.diff(ends, prepend=0))
    pairs, counts = np.unique((docs << 32) | ids.astype(np.int64), return_counts=True)
    return pairs >> 32, (pairs & 0xFFFFFFFF).astype(np.intc), counts


def _write_scores(
    folder: Path,
    scratch: Path,
    lengths: np.ndarray,
    distinct: np.ndarray,
    df: np.ndarray,
    k1: float,
    b: float,
    batch: int,
) -> None:
    """The score matrix's CSC arrays, files in ``folder`` as bm25s names them, from the postings in
    ``scratch`` ((token, count) int32 pairs, texts one after another, ``distinct`` pairs each; a text has
    ``lengths`` tokens), read about ``batch`` postings at a time."""
    n_docs = len(lengths)
    avg = np.asarray(lengths, dtype=np.int64).mean() if n_docs else 1.0  # as bm25s: an integer array's mean
    # bm25s's lucene idf per token, in Python floats (numpy's log may differ from libm's in the last place)
    idf = np.array([math.log(1 + (n_docs - f + 0.5) / (f + 0.5)) if f else 0.0 for f in df.tolist()])
    idf = idf.astype(np.float32)
    indptr = np.zeros(len(df) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    np.save(folder / "indptr.csc.index.npy", indptr)
    nnz = int(indptr[-1])
    data = np.lib.format.open_memmap(folder / "data.csc.index.npy", "w+", np.float32, (nnz,))
    rows = np.lib.format.open_memmap(folder / "indices.csc.index.npy", "w+", np.intc, (nnz,))
    free = indptr[:-1].copy()  # each column's next free place
    ends = np.cumsum(distinct, dtype=np.int64)
    first = 0
    with open(scratch, "rb") as postings:  # read a batch at a time (a map's pages would count in the RSS)
        while first < n_docs:  # a batch: whole texts, about ``batch`` postings
            start = int(ends[first - 1]) if first else 0
            last = min(n_docs, max(first + 1, int(np.searchsorted(ends, start + batch, side="right"))))
            postings.seek(start * 8)
            pairs = np.fromfile(postings, dtype=np.intc, count=2 * (int(ends[last - 1]) - start)).reshape(
                -1, 2
            )
            tokens, counts = pairs[:, 0], pairs[:, 1]
            docs = np.repeat(np.arange(first, last), distinct[first:last])
            # bm25s: tf (float32) / (k1 * ((1 - b) + b * l_d / l_avg) + tf), in float64, times idf (float32)
            tf = counts.astype(np.float32).astype(np.float64)
            scores = idf[tokens] * (tf / (k1 * ((1 - b) + b * lengths[docs].astype(np.float64) / avg) + tf))
            order = np.argsort(tokens, kind="stable")  # by column, texts still in order within one
            tokens = tokens[order]
            starts = np.flatnonzero(np.r_[True, tokens[1:] != tokens[:-1]])
            sizes = np.diff(np.r_[starts, len(tokens)])
            places = free[tokens] + (np.arange(len(tokens)) - np.repeat(starts, sizes))
            data[places] = scores[order].astype(np.float32)
            rows[places] = docs[order].astype(np.intc)
            free[tokens[starts]] += sizes
            first = last
            for written in (data, rows):
                _release(written)
    for written in (data, rows):
        written.flush()
    del data, rows


def _release(written: np.memmap) -> None:
    """Drop a mapped array's pages from this process: the page cache keeps them, dirty ones still to be
    written (the kernel moves a page's dirty bit from the mapping to the page; ``flush`` would wait for the
    disk every batch). Else every page of the score matrix counts in the build's RSS until the map closes."""
    mapped = getattr(written, "_mmap", None)
    if mapped is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


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

    @classmethod
    def write(
        cls,
        texts: Iterable[str],
        folder: Path,
        *,
        k1: float = K1,
        b: float = B,
        batch_tokens: int = WRITE_BATCH_TOKENS,
    ) -> None:
        """BM25 over ``texts`` written into ``folder`` as ``build(texts).save(folder)`` writes it, byte for
        byte, with memory bounded by a batch of ``batch_tokens`` tokens and the vocabulary, not by the texts:
        bm25s builds its score matrix whole (at 10^6 passages +1.3 GB at its peak, ~36 bytes a posting).

        One pass tokenises the texts a batch at a time into their postings (each text's distinct tokens and
        their counts), written to a scratch file, counting each text's length and each token's document
        frequency; the frequencies give every token's place in the score matrix (its CSC column), which is a
        file mapped into memory. A second pass reads the postings back a batch at a time, scores them as
        bm25s scores them (same operations, same dtypes) and puts each in its column's next free place, so
        columns hold their rows in ascending order, as bm25s's do."""
        folder.mkdir(parents=True, exist_ok=True)
        scratch = folder / ".postings.scratch"
        vocab: dict[str, int] = {}
        lengths, distinct = array("i"), array("i")  # each text's tokens, and its distinct tokens
        df = np.zeros(0, dtype=np.int64)
        try:
            with open(scratch, "wb") as out:
                ids, ends = array("i"), array("q")

                def flush() -> None:
                    nonlocal df, ids, ends
                    docs, tokens, counts = _postings(
                        np.frombuffer(ids, np.intc), np.frombuffer(ends, np.int64)
                    )
                    np.stack([tokens, counts.astype(np.intc)], axis=1).tofile(out)
                    df = np.pad(df, (0, len(vocab) - len(df))) + np.bincount(tokens, minlength=len(vocab))
                    lengths.extend(np.diff(np.frombuffer(ends, np.int64), prepend=0).astype(np.intc))
                    distinct.extend(np.bincount(docs, minlength=len(ends)).astype(np.intc))
                    ids, ends = array("i"), array("q")

                for text in texts:
                    ids.extend(vocab.setdefault(t, len(vocab)) for t in tokenize(text) or [""])
                    ends.append(len(ids))
                    if len(ids) >= batch_tokens:
                        flush()
                if ends:
                    flush()
            df = np.pad(df, (0, len(vocab) - len(df)))
            n_docs = len(lengths)
            model = bm25s.BM25(k1=k1, b=b, method="lucene")
            model.scores = {
                "data": np.zeros(0, np.float32),
                "indices": np.zeros(0, np.int32),
                "indptr": np.zeros(1, np.int64),
                "num_docs": n_docs,
            }
            model.vocab_dict, model.nonoccurrence_array = vocab, None  # (lucene has none)
            if "" not in vocab:  # as bm25s's index(): the empty token, after the scored ones
                model.vocab_dict = {**vocab, "": len(vocab)}
            model.save(str(folder), show_progress=False)  # its vocabulary and parameters; arrays below
            _write_scores(
                folder,
                scratch,
                np.frombuffer(lengths, np.intc),
                np.frombuffer(distinct, np.intc),
                df,
                k1,
                b,
                batch_tokens,
            )
        finally:
            scratch.unlink(missing_ok=True)

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
