"""BEIR NFCorpus (or any BEIR folder) beside SciFact: nDCG@10 with graded gains and recall@100 per mode.

    python bench/eval_beir.py --beir /work/shared/benchmarks/nfcorpus          # test split, 323 queries
    python bench/eval_beir.py --beir /work/shared/benchmarks/scifact           # same code, binary qrels

Everything but the gain of a judgment is qa/evaluation.py's: load_beir, document_passages (title + abstract,
one passage per document), cached_encode (vectors cached in --cache-dir by model-weights hash), MemoryIndex,
keyword_text, recall_at, MODES, and the product's Retriever with the fusion settings of Settings() (z-score,
0.6 dense). Only the test qrels are read; nothing here is tuned.

The one new bit: NFCorpus qrels are graded (1 and 2), and qa.evaluation.load_beir keeps only the set of
relevant documents, while qa.evaluation.ndcg_at gives every relevant document gain 1. Here nDCG@10 uses the
grade as the gain (DCG = sum rel_i / log2(i + 2), ideal DCG from the grades sorted, as trec_eval / pytrec_eval
and so BEIR compute it); for binary qrels it equals ndcg_at. The binary-gain figure is printed beside it.
recall@100 counts every judged document with grade > 0, as BEIR does.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from qa.evaluation import (
    MODES,
    MemoryIndex,
    cached_encode,
    document_passages,
    keyword_text,
    load_beir,
    ndcg_at,
    recall_at,
)

ROOT = Path(__file__).resolve().parent.parent


def graded_qrels(folder: Path, split: str = "test") -> dict[str, dict[str, int]]:
    """qrels/{split}.tsv as {query id: {doc id: grade}} (grades > 0 only; CRLF-safe)."""
    out: dict[str, dict[str, int]] = {}
    for line in (Path(folder) / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.strip().split("\t")[:3]
        if int(score) > 0:
            out.setdefault(qid, {})[did] = int(score)
    return out


def graded_ndcg_at(ranked: list[str], gains: dict[str, int], k: int = 10) -> float:
    """nDCG@k with the judgment's grade as its gain (linear gain, trec_eval's ndcg_cut)."""
    dcg = sum(gains.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(gains.values(), reverse=True)[:k]))
    return dcg / ideal if ideal else 0.0


def evaluate(folder: Path, cache_dir: Path) -> dict[str, Any]:
    from qa.encoding import Embedder
    from qa.index.dense import DenseIndex
    from qa.index.keyword import KeywordIndex
    from qa.retrieval import Retriever
    from qa.settings import Settings

    settings = Settings()
    data = load_beir(folder)
    graded = graded_qrels(folder)
    assert {q: set(g) for q, g in graded.items()} == data.test  # same judgments as qa.evaluation reads
    qids = sorted(data.test)
    embedder = Embedder(settings.model, threads=settings.torch_threads)
    passages = document_passages(data.doc_ids, data.titles, data.texts)
    vectors, embed_seconds, cached = cached_encode(embedder, [p.embed_text for p in passages], cache_dir)
    started = time.perf_counter()
    index = MemoryIndex(
        passages, DenseIndex.build(vectors), KeywordIndex.build([keyword_text(p) for p in passages]), vectors
    )
    index_seconds = time.perf_counter() - started
    retriever = Retriever(index, embedder.encode, **settings.retrieval)
    qvecs = embedder.encode([data.queries[q] for q in qids])
    metrics: dict[str, dict[str, float]] = {}
    for mode in MODES:
        ndcg, binary, recall = [], [], []
        for q, v in zip(qids, qvecs, strict=True):
            hits = retriever.search(data.queries[q], 100, mode=mode, query_vector=v)
            ranked = [h.passage.doc_id for h in hits]
            ndcg.append(graded_ndcg_at(ranked, graded[q], 10))
            binary.append(ndcg_at(ranked, data.test[q], 10))
            recall.append(recall_at(ranked, data.test[q], 100))
        metrics[mode] = {
            "ndcg@10": round(float(np.mean(ndcg)), 4),
            "ndcg@10_binary": round(float(np.mean(binary)), 4),
            "recall@100": round(float(np.mean(recall)), 4),
        }
    return {
        "folder": str(folder),
        "split": "test",
        "queries": len(qids),
        "documents": len(passages),
        "model": embedder.name,
        "retrieval": settings.retrieval,
        "embed_seconds": round(embed_seconds, 1),
        "embeddings_cached": cached,
        "index_seconds": round(index_seconds, 1),
        "metrics": metrics,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beir", type=Path, default=Path("/work/shared/benchmarks/nfcorpus"), help="BEIR folder")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "index" / "cache", help="embedding cache")
    ap.add_argument("--out", type=Path, help="results JSON (default bench/results/<folder name>.json)")
    args = ap.parse_args(argv)
    result = evaluate(args.beir, args.cache_dir)
    how = "cached" if result["embeddings_cached"] else "computed"
    print(
        f"{args.beir.name} test: {result['queries']} queries, {result['documents']} documents; "
        f"embedding {result['embed_seconds']}s ({how}), index {result['index_seconds']}s"
    )
    print("| mode | nDCG@10 (graded) | nDCG@10 (binary) | recall@100 |\n| --- | --- | --- | --- |")
    for mode, m in result["metrics"].items():
        print(f"| {mode} | {m['ndcg@10']:.4f} | {m['ndcg@10_binary']:.4f} | {m['recall@100']:.4f} |")
    out = args.out or ROOT / "bench" / "results" / f"{args.beir.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
