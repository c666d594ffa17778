"""Retrieval evaluation: hit@k and MRR on dev questions, nDCG@10 and recall@100 on BEIR SciFact."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.chunking import Passage
from qa.errors import QAError
from qa.jsonl import read_jsonl

if TYPE_CHECKING:  # FAISS, bm25s and torch load only when an evaluation runs, not for `qa --help`
    from qa.encoding import Embedder
    from qa.index.dense import DenseIndex
    from qa.index.keyword import KeywordIndex
    from qa.retrieval import Retriever
    from qa.settings import Settings

MODES = ("hybrid", "dense", "bm25")


# --- dev questions -----------------------------------------------------------


@dataclass
class DevQuestion:
    id: str
    question: str
    evidence: list[str]


def load_questions(path: Path) -> list[DevQuestion]:
    """Questions in the retrieval_dev.jsonl format: one {id, question, evidence: [...]} per line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [DevQuestion(**json.loads(line)) for line in lines if line.strip()]
    except (OSError, ValueError, TypeError) as exc:
        raise QAError(f"cannot read questions from {path}: {exc}") from exc


def normalize_space(text: str) -> str:
    return " ".join(text.split())


def first_hit_rank(passages: Iterable[str], evidence: list[str]) -> int | None:
    """1-based rank of the first passage containing one of the evidence strings (whitespace-normalized)."""
    wanted = [normalize_space(e) for e in evidence]
    for rank, text in enumerate(passages, start=1):
        flat = normalize_space(text)
        if any(e in flat for e in wanted):
            return rank
    return None


def rank_metrics(ranks: list[int | None]) -> dict[str, float]:
    """hit@1, hit@5 and MRR@10 over the first-hit ranks of a question set (None: not found)."""
    n = len(ranks) or 1
    return {
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n,
    }


def evaluate_questions(
    retriever: Retriever,
    questions: list[DevQuestion],
    modes: Iterable[str] = MODES,
    *,
    expand: Callable[[str], list[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per mode: the metrics and each question's first-hit rank within the top 10.

    With ``expand`` (the facts vocabulary's query expansion) a row "hybrid+vocab" measures what it adds.
    """
    out: dict[str, dict[str, Any]] = {}
    vectors = retriever.encode([q.question for q in questions])
    runs = [(mode, mode, None) for mode in modes] + ([("hybrid+vocab", "hybrid", expand)] if expand else [])
    for name, mode, expander in runs:
        ranks = {}
        for q, v in zip(questions, vectors, strict=True):
            extra = expander(q.question) if expander else None
            hits = retriever.search(q.question, 10, mode=mode, query_vector=v, expansions=extra)
            ranks[q.id] = first_hit_rank((h.passage.text for h in hits), q.evidence)
        out[name] = {**rank_metrics(list(ranks.values())), "ranks": ranks}
    return out


# --- BEIR / SciFact ------------------------------------------------------------


@dataclass
class Beir:
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    queries: dict[str, str]
    test: dict[str, set[str]]  # qrels/test.tsv: the only judgments scored
    train: dict[str, set[str]]  # train claims' cited documents (queries.jsonl metadata), for tuning


def load_beir(folder: Path) -> Beir:
    folder = Path(folder)
    if not (folder / "corpus.jsonl").exists():
        raise QAError(f"{folder} is not a BEIR folder (no corpus.jsonl)")
    docs = read_jsonl(folder / "corpus.jsonl")
    test: dict[str, set[str]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")[:3]
        if int(score) > 0:
            test.setdefault(qid, set()).add(did)
    queries, train = {}, {}
    for q in read_jsonl(folder / "queries.jsonl"):
        queries[q["_id"]] = q["text"]
        if q["_id"] not in test and q.get("metadata"):
            train[q["_id"]] = set(q["metadata"])
    return Beir(
        [d["_id"] for d in docs],
        [d.get("title", "") for d in docs],
        [d["text"] for d in docs],
        queries,
        test,
        train,
    )


def ndcg_at(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    """Binary-gain nDCG@k (BEIR's definition with all judgments = 1)."""
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
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
    from qa.retrieval import Retriever

    data = load_beir(folder)
    qrels = data.test if split == "test" else data.train
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
    retriever = Retriever(index, embedder.encode, **(retriever_options or {}))
    qvecs = embedder.encode([data.queries[q] for q in qids])
    report = BeirReport(split, len(qids), len(passages), embed_seconds, cached, index_seconds)
    for mode in MODES:
        ndcg, recall = [], []
        for q, v in zip(qids, qvecs, strict=True):
            ranked = [
                h.passage.doc_id for h in retriever.search(data.queries[q], 100, mode=mode, query_vector=v)
            ]
            ndcg.append(ndcg_at(ranked, qrels[q], 10))
            recall.append(recall_at(ranked, qrels[q], 100))
        report.metrics[mode] = {"ndcg@10": float(np.mean(ndcg)), "recall@100": float(np.mean(recall))}
    return report


# --- the `qa eval` command ---------------------------------------------------


def run_evaluation(
    settings: Settings,
    *,
    questions: Path | None = None,
    scifact: Path | None = None,
    split: str = "test",
    limit: int | None = None,
) -> dict[str, Any]:
    """What `qa eval` reports: the dev questions on the served index and/or BEIR SciFact in memory."""
    if not questions and not scifact:
        raise QAError("give --questions FILE and/or --scifact DIR")
    result: dict[str, Any] = {}
    embedder = None
    if questions:
        from qa.services import Services

        services = Services.start(settings)
        embedder = services.embedder
        expand = services.facts.expand_query if services.facts is not None else None
        result["questions"] = evaluate_questions(services.retriever, load_questions(questions), expand=expand)
    if scifact:
        from qa.encoding import Embedder

        embedder = embedder or Embedder(settings.model, threads=settings.torch_threads)
        report = evaluate_beir(
            embedder,
            scifact,
            cache_dir=Path(settings.index_dir) / "cache",
            split=split,
            limit=limit,
            retriever_options=settings.retrieval,
        )
        result["scifact"] = asdict(report)
    return result


def format_report(result: dict[str, Any]) -> str:
    lines: list[str] = []
    if "questions" in result:
        q = result["questions"]
        lines += [f"dev questions ({len(q['hybrid']['ranks'])})", f"{'mode':<12} hit@1  hit@5  MRR@10"]
        lines += [f"{m:<12} {q[m]['hit@1']:.3f}  {q[m]['hit@5']:.3f}  {q[m]['mrr@10']:.3f}" for m in q]
        missed = [i for i, r in q["hybrid"]["ranks"].items() if r != 1]
        if missed:
            lines.append(
                "hybrid not at rank 1: " + ", ".join(f"{i} ({q['hybrid']['ranks'][i]})" for i in missed)
            )
    if "scifact" in result:
        s = result["scifact"]
        how = "cached" if s["cached"] else "computed"
        lines += [
            "" if lines else "",
            f"SciFact {s['split']}: {s['queries']} queries, {s['documents']} documents; embedding "
            f"{s['embed_seconds']:.1f}s ({how}), FAISS + BM25 index {s['index_seconds']:.1f}s",
            f"{'mode':<8} nDCG@10  recall@100",
        ]
        lines += [f"{m:<8} {v['ndcg@10']:.4f}   {v['recall@100']:.4f}" for m, v in s["metrics"].items()]
    return "\n".join(line for i, line in enumerate(lines) if line or i)
