"""BEIR folders (SciFact, NFCorpus): nDCG@10 and recall@100 of the product's retrieval over a corpus in memory.

One passage per document (title as its section, abstract as its text), vectors cached by model-weights hash,
the product's Retriever with the fusion settings given. Only qrels/test.tsv is scored; SciFact's "train"
split is the train claims' cited documents (queries.jsonl metadata), for tuning.

Judgments may be graded (NFCorpus: 1 and 2). nDCG@10 uses the grade as the gain (DCG = sum rel_i /
log2(i + 2), ideal DCG from the grades sorted, as trec_eval / pytrec_eval and so BEIR compute it); for binary
qrels (SciFact) that is binary nDCG, and for graded ones the binary-gain figure is reported beside it.
recall@100 counts every judged document with grade > 0, as BEIR does.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.chunking import Passage
from qa.errors import QAError
from qa.evaluation.retrieval import MODES
from qa.jsonl import read_jsonl

if TYPE_CHECKING:  # FAISS, bm25s and torch load only when an evaluation runs, not for `qa --help`
    from qa.encoding import Embedder
    from qa.index.dense import DenseIndex
    from qa.index.keyword import KeywordIndex


@dataclass
class Beir:
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    queries: dict[str, str]
    test: dict[str, set[str]]  # qrels/test.tsv: the only judgments scored
    train: dict[str, set[str]]  # train claims' cited documents (queries.jsonl metadata), for tuning
    gains: dict[str, dict[str, int]] = field(default_factory=dict)  # test judgments' grades (> 0)

    @property
    def graded(self) -> bool:
        return any(g != 1 for grades in self.gains.values() for g in grades.values())

    def judgments(self, split: str, folder: Path) -> dict[str, set[str]]:
        if split == "test":
            return self.test
        if split != "train":
            raise QAError(f"unknown split {split!r} (test or train)")
        if not self.train:
            raise QAError(
                f"{folder} has no train split: its queries.jsonl cites no corpus documents "
                "(only SciFact's train claims do); use --split test"
            )
        return self.train


def load_beir(folder: Path) -> Beir:
    folder = Path(folder)
    if not (folder / "corpus.jsonl").exists():
        raise QAError(f"{folder} is not a BEIR folder (no corpus.jsonl)")
    docs = read_jsonl(folder / "corpus.jsonl")
    doc_ids = [d["_id"] for d in docs]
    gains: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.strip().split("\t")[:3]
        if int(score) > 0:
            gains.setdefault(qid, {})[did] = int(score)
    test = {q: set(g) for q, g in gains.items()}
    known = set(doc_ids)
    queries, train = {}, {}
    for q in read_jsonl(folder / "queries.jsonl"):
        queries[q["_id"]] = q["text"]
        cited = q.get("metadata") or {}
        # SciFact: {doc id: evidence}; NFCorpus: {"url": ...}, which cites nothing
        if q["_id"] not in test and cited and set(cited) <= known:
            train[q["_id"]] = set(cited)
    return Beir(
        doc_ids, [d.get("title", "") for d in docs], [d["text"] for d in docs], queries, test, train, gains
    )


def ndcg_at(
    ranked: list[str], relevant: set[str], k: int = 10, *, gains: dict[str, int] | None = None
) -> float:
    """nDCG@k: binary gain (every relevant document 1), or with ``gains`` each judgment's grade (linear gain,
    trec_eval's ndcg_cut); the documents of ``gains`` are then the relevant ones."""
    if gains is None:
        gains = dict.fromkeys(relevant, 1)
    dcg = sum(gains.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(gains.values(), reverse=True)[:k]))
    return dcg / ideal if ideal else 0.0


def recall_at(ranked: list[str], relevant: set[str], k: int = 100) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


@dataclass
class MemoryIndex:
    """Passages and both indexes held in memory: what a benchmark corpus needs from the product's index."""

    passages: list[Passage]
    dense: DenseIndex
    keyword: KeywordIndex
    vectors: np.ndarray

    def dense_vectors(self, rows: np.ndarray) -> np.ndarray:
        return self.vectors[rows]


def document_passages(doc_ids: list[str], titles: list[str], texts: list[str]) -> list[Passage]:
    """One passage per document: the title as its section, the abstract as its text."""
    return [
        Passage(
            id=d, doc_id=d, section_id="", section=[t] if t else [], kind="body", start=0, end=len(x), text=x
        )
        for d, t, x in zip(doc_ids, titles, texts, strict=True)
    ]


def cached_encode(embedder: Embedder, texts: list[str], cache_dir: Path) -> tuple[np.ndarray, float, bool]:
    """Embeddings of ``texts``, read from ``cache_dir`` when the same model weights already embedded them.

    Returns the vectors, the seconds the embedding took when it was computed (perhaps on an earlier run)
    and whether they came from the cache.
    """
    key = hashlib.sha256()
    key.update(f"{embedder.name}\0{embedder.weights_sha256}\0{embedder.max_tokens}\0".encode())
    for t in texts:
        key.update(t.encode("utf-8") + b"\0")
    stem = Path(cache_dir) / key.hexdigest()[:32]
    meta_path, npy_path = stem.with_suffix(".json"), stem.with_suffix(".npy")
    if meta_path.exists() and npy_path.exists():
        vectors = np.load(npy_path)
        if vectors.shape[0] == len(texts):
            return vectors, float(json.loads(meta_path.read_text())["seconds"]), True
    started = time.perf_counter()
    vectors = embedder.encode(texts, progress=False)
    seconds = time.perf_counter() - started
    stem.parent.mkdir(parents=True, exist_ok=True)
    np.save(npy_path, vectors)
    meta = {"model": embedder.name, "weights_sha256": embedder.weights_sha256, "count": len(texts)}
    meta_path.write_text(json.dumps({**meta, "seconds": round(seconds, 2)}))
    return vectors, seconds, False


@dataclass
class BeirReport:
    split: str
    queries: int
    documents: int
    embed_seconds: float  # embedding the corpus (from the cache's record when it was cached)
    cached: bool
    index_seconds: float  # building the FAISS and BM25 indexes from the vectors and texts
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    name: str = ""  # the folder's name: scifact, nfcorpus
    graded: bool = False  # graded test qrels: ndcg@10 uses the grades, ndcg@10_binary is beside it


def evaluate_beir(
    embedder: Embedder,
    folder: Path,
    *,
    cache_dir: Path,
    split: str = "test",
    limit: int | None = None,
    retriever_options: dict[str, Any] | None = None,
) -> BeirReport:
    """nDCG@10 and recall@100 per mode over ``split`` ("test": qrels; "train": train claims' cited docs)."""
    from qa.index.dense import DenseIndex
    from qa.index.keyword import KeywordIndex
    from qa.lexicon import LAY_TERMS, Lexicon, read_lay_terms
    from qa.retrieval import Retriever

    data = load_beir(folder)
    qrels = data.judgments(split, Path(folder))
    gains = data.gains if split == "test" else {}
    graded = split == "test" and data.graded
    qids = sorted(qrels, key=lambda q: int(q) if q.isdigit() else q)[:limit]
    passages = document_passages(data.doc_ids, data.titles, data.texts)
    if limit is not None:  # a small corpus: the judged documents plus a slice of the rest
        wanted = set().union(*(qrels[q] for q in qids))
        passages = [p for i, p in enumerate(passages) if p.doc_id in wanted or i < 20 * limit]
    vectors, embed_seconds, cached = cached_encode(embedder, [p.embed_text for p in passages], cache_dir)
    started = time.perf_counter()
    index = MemoryIndex(
        passages, DenseIndex.build(vectors), KeywordIndex.build([p.keyword_text for p in passages]), vectors
    )
    index_seconds = time.perf_counter() - started
    options = {"lexicon": Lexicon(lay=read_lay_terms(LAY_TERMS)), **(retriever_options or {})}
    retriever = Retriever(index, embedder.encode, **options)  # the product's lay terms on the keyword side
    qvecs = embedder.encode([data.queries[q] for q in qids])
    report = BeirReport(
        split,
        len(qids),
        len(passages),
        embed_seconds,
        cached,
        index_seconds,
        name=Path(folder).name,
        graded=graded,
    )
    for mode in MODES:
        ndcg, binary, recall = [], [], []
        for q, v in zip(qids, qvecs, strict=True):
            ranked = [
                h.passage.doc_id for h in retriever.search(data.queries[q], 100, mode=mode, query_vector=v)
            ]
            ndcg.append(ndcg_at(ranked, qrels[q], 10, gains=gains.get(q)))
            binary.append(ndcg_at(ranked, qrels[q], 10))
            recall.append(recall_at(ranked, qrels[q], 100))
        report.metrics[mode] = {"ndcg@10": float(np.mean(ndcg)), "recall@100": float(np.mean(recall))}
        if graded:
            report.metrics[mode]["ndcg@10_binary"] = float(np.mean(binary))
    return report
