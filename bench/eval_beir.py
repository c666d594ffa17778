"""BEIR NFCorpus (or any BEIR folder): a thin wrapper over qa.evaluation.beir (also `qa eval --nfcorpus`).

    python bench/eval_beir.py --beir /work/shared/benchmarks/nfcorpus          # test split, 323 queries
    python bench/eval_beir.py --beir /work/shared/benchmarks/scifact           # same code, binary qrels

nDCG@10 with the graded judgments as gains (and the binary-gain figure beside it when the qrels are graded)
and recall@100 per mode, with the fusion settings of Settings(); only the test qrels are read. Writes
bench/results/<folder name>.json in the format it always had.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qa.evaluation.beir import evaluate_beir

ROOT = Path(__file__).resolve().parent.parent


def evaluate(folder: Path, cache_dir: Path) -> dict[str, Any]:
    from qa.encoding import Embedder
    from qa.settings import Settings

    settings = Settings()
    embedder = Embedder(settings.model, threads=settings.torch_threads)
    report = evaluate_beir(embedder, folder, cache_dir=cache_dir, retriever_options=settings.retrieval)
    metrics = {
        mode: {
            "ndcg@10": round(m["ndcg@10"], 4),
            "ndcg@10_binary": round(m.get("ndcg@10_binary", m["ndcg@10"]), 4),
            "recall@100": round(m["recall@100"], 4),
        }
        for mode, m in report.metrics.items()
    }
    return {
        "folder": str(folder),
        "split": report.split,
        "queries": report.queries,
        "documents": report.documents,
        "model": embedder.name,
        "retrieval": settings.retrieval,
        "embed_seconds": round(report.embed_seconds, 1),
        "embeddings_cached": report.cached,
        "index_seconds": round(report.index_seconds, 1),
        "metrics": metrics,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
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
