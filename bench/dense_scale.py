"""The dense index at scale: exact (flat) against HNSW-SQ8 on prefixes of a real vector file.

For each size (a prefix of the vectors): build seconds, index file bytes, recall@10 of HNSW-SQ8 against
exact search at several efSearch values, single-query search p50/p95 in milliseconds with 1 and 2 FAISS
threads (one query at a time, as a server searches), and the resident memory (VmRSS) of a fresh process
that loads the index the way the server does (``DenseIndex.load``: memory-mapped) and then searches.
Writes bench/results/dense_scale.json (after every size, so a long run leaves what it finished).

    PYTHONPATH=. HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python bench/dense_scale.py \\
        --vectors /work/scale/vectors.f16.npy --queries /work/scale/queries.f16.npy [--sizes 10000,100000,1000000]

A vector file still being written (``progress.json`` beside it gives ``rows`` done) is used up to the
rows done. Without vector files at hand, ``--embed-beir FOLDER`` first embeds sentences of a BEIR corpus
(``corpus.jsonl``) and its queries with the packaged model into ``--vectors`` / ``--queries``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qa.index.dense import DenseIndex  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "dense_scale.json"
K = 10

_RSS_CHILD = r"""
import json, sys, time
import numpy as np, faiss
from qa.index.dense import DenseIndex
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
before = rss()
t0 = time.perf_counter()
index = DenseIndex.load(__import__("pathlib").Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]),
                        mmap=sys.argv[4] == "1")
load_s = time.perf_counter() - t0
loaded = rss()
faiss.omp_set_num_threads(1)
queries = np.load(sys.argv[5]).astype(np.float32)
for q in queries:
    index.search(q[None, :], 10)
print(json.dumps({"rss_before_load": before, "rss_after_load": loaded, "rss_after_search": rss(),
                  "load_seconds": round(load_s, 3), "mapped": index.mapped, "queries": len(queries)}))
"""


def rows_available(vectors: Path) -> int:
    """Rows of ``vectors`` that are written: up to the first all-zero row, and no more than a progress.json
    beside it says."""
    array = np.load(vectors, mmap_mode="r")
    total = int(array.shape[0])
    # A file written in place is preallocated with zeros: the rows done end at the first all-zero row.
    for start in range(0, total, 100_000):
        empty = np.flatnonzero(~np.any(array[start : start + 100_000], axis=1))
        if len(empty):
            total = start + int(empty[0])
            break
    progress = vectors.parent / "progress.json"
    if progress.exists():
        try:
            data = json.loads(progress.read_text())
            done = int(data.get("rows", data.get("done", total)))
            return min(total, done)
        except (ValueError, TypeError):
            return 0
    return total


def latencies(index: DenseIndex, queries: np.ndarray, threads: int) -> dict[str, float]:
    faiss.omp_set_num_threads(threads)
    for q in queries[:20]:  # warm the caches and the mapped pages a little
        index.search(q[None, :], K)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], K)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
        "mean_ms": round(float(np.mean(times)), 3),
    }


def recall(got: np.ndarray, want: np.ndarray) -> float:
    return round(float(np.mean([len(set(g) & set(w)) / K for g, w in zip(got, want, strict=True)])), 4)


def rss_of_load(
    path: Path, kind: str, params: dict[str, object], queries: Path, mmap: bool
) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _RSS_CHILD,
            str(path),
            kind,
            json.dumps(params),
            "1" if mmap else "0",
            str(queries),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_size(
    n: int, base: np.ndarray, queries: np.ndarray, args: argparse.Namespace, work: Path
) -> dict[str, object]:
    vectors = np.ascontiguousarray(base[:n], dtype=np.float32)
    result: dict[str, object] = {"n": n}
    lat_q = queries[: args.latency_queries]
    lat_file = work / "latency_queries.npy"
    np.save(lat_file, lat_q)

    t0 = time.perf_counter()
    flat = DenseIndex.build(vectors, "flat")
    flat_build = time.perf_counter() - t0
    faiss.omp_set_num_threads(2)
    _, want = flat.search(queries, K)
    flat_path = work / f"flat_{n}.faiss"
    flat.save(flat_path)
    result["flat"] = {
        "build_seconds": round(flat_build, 2),
        "index_bytes": flat_path.stat().st_size,
        "search_1_thread": latencies(flat, lat_q, 1),
        "search_2_threads": latencies(flat, lat_q, 2),
        "rss_mmap_load": rss_of_load(flat_path, "flat", flat.params.to_dict(), lat_file, True),
    }
    del flat
    flat_path.unlink()
    print(json.dumps({"n": n, "flat": result["flat"]}), flush=True)

    t0 = time.perf_counter()
    hnsw = DenseIndex.build(
        vectors,
        "hnsw",
        hnsw_m=args.m,
        ef_construction=args.ef_construction,
        ef_search=args.ef_search[0],
        train_sample=args.train_sample,
    )
    build_s = time.perf_counter() - t0
    path = work / f"hnsw_{n}.faiss"
    record = hnsw.save(path)
    del vectors
    by_ef = []
    for ef in args.ef_search:
        faiss.downcast_index(hnsw.index).hnsw.efSearch = ef
        faiss.omp_set_num_threads(2)
        _, got = hnsw.search(queries, K)
        by_ef.append(
            {
                "ef_search": ef,
                "recall_at_10": recall(got, want),
                "search_1_thread": latencies(hnsw, lat_q, 1),
                "search_2_threads": latencies(hnsw, lat_q, 2),
            }
        )
        print(json.dumps({"n": n, "hnsw": by_ef[-1]}), flush=True)
    del hnsw
    result["hnsw_sq8"] = {
        "params": record,
        "build_seconds": round(build_s, 2),
        "build_threads": len(os.sched_getaffinity(0)),
        "index_bytes": path.stat().st_size,
        "by_ef_search": by_ef,
        "rss_mmap_load": rss_of_load(path, "hnsw", record, lat_file, True),
        "rss_read_load": rss_of_load(path, "hnsw", record, lat_file, False),
    }
    path.unlink()
    return result


def embed_beir(folder: Path, n: int, n_queries: int, vectors: Path, queries: Path) -> None:
    """Vectors of the first ``n`` sentences (over 20 characters) of a BEIR corpus, and of its queries."""
    from qa.encoding import Embedder
    from qa.sentences import split_sentences

    texts: list[str] = []
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            text = f"{doc.get('title', '')}. {doc['text']}"
            texts += [text[a:b] for a, b in split_sentences(text) if b - a > 20]
            if len(texts) >= n:
                break
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        qs = [json.loads(line)["text"] for line in fh][:n_queries]
    embedder = Embedder("all-MiniLM-L6-v2")
    np.save(vectors, embedder.encode_many(texts[:n], progress=True).astype(np.float16))
    np.save(queries, embedder.encode(qs).astype(np.float16))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--ef-search", default="32,64,128", help="comma-separated; the first is the build's")
    parser.add_argument("--train-sample", type=int, default=100_000)
    parser.add_argument("--latency-queries", type=int, default=500)
    parser.add_argument(
        "--work", type=Path, default=None, help="folder for index files (default: a temp dir)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--embed-beir", type=Path, default=None, help="embed a BEIR folder's sentences first")
    parser.add_argument("--embed-n", type=int, default=20_000)
    args = parser.parse_args()
    args.ef_search = [int(x) for x in args.ef_search.split(",")]
    if args.embed_beir:
        embed_beir(args.embed_beir, args.embed_n, 1000, args.vectors, args.queries)

    available = rows_available(args.vectors)
    base = np.load(args.vectors, mmap_mode="r")
    queries = np.ascontiguousarray(np.load(args.queries), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    out: dict[str, object] = {
        "vectors": str(args.vectors),
        "rows_available": available,
        "queries": len(queries),
        "dim": int(base.shape[1]),
        "faiss": faiss.__version__,
        "machine": {
            "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
        },
        "skipped_sizes": [n for n in sizes if n > available],
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for n in [n for n in sizes if n <= available]:
            out["sizes"].append(run_size(n, base, queries, args, Path(tmp)))  # type: ignore[attr-defined]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=2) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
