"""Search at 10^4, 10^5 and 10^6 passages: build time and memory, serving memory, search p50/p95, ANN recall.

Uses the passages and real-model vectors ``bench/scale_corpus.py`` wrote (only rows it has finished):

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/scale.py --data /work/scale \\
        --sizes 10000 100000 1000000 --out bench/results/scale.json --plot bench/results/scale.png

For each size, in a subprocess of its own (so its memory is its own): the keyword index (BM25, the product's
tokenizer) and the dense index (the kind the product's settings choose for that size) are built from the
cached vectors and saved; in a second subprocess they are loaded as a server loads them and searched with
the product's Retriever (dense + BM25 + z-score fusion, depth 100, top 10), the questions' vectors given
(no forward pass: the issue's bar for search), one question at a time on one thread, as a server worker
does. Recall@10 is the dense index's top 10 against exact inner-product search over the same vectors.
Queries are SciFact claims and NFCorpus queries (latency and recall only, never relevance).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def texts(data: Path, n: int) -> list[str]:
    out = []
    with open(data / "passages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if len(out) >= n:
                break
            out.append(json.loads(line)["text"])
    return out


def vectors(data: Path, n: int) -> np.ndarray:
    """The first ``n`` passage vectors: the real model's where bench/scale_corpus.py has computed them; past
    those (only with --stand-in) row i is real row i mod done plus Gaussian noise (sigma 0.03 per dimension,
    a choice, not fitted to real neighbourhoods), normalised: a labelled stand-in for index
    mechanics (build time, memory, latency), never reported as the real model's vectors."""
    done = json.loads((data / "progress.json").read_text())["done"]
    real = np.asarray(np.load(data / "vectors.f16.npy", mmap_mode="r")[: min(n, done)], dtype=np.float32)
    if n <= done:
        return real
    rng = np.random.default_rng(0)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[:done] = real
    for start in range(done, n, 100_000):
        stop = min(n, start + 100_000)
        block = real[np.arange(start, stop) % done] + rng.normal(0, 0.03, (stop - start, real.shape[1]))
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def build(data: Path, n: int, folder: Path) -> dict[str, object]:
    from qa.index.dense import DenseIndex, choose_kind
    from qa.index.keyword import KeywordIndex
    from qa.settings import Settings

    settings = Settings()
    t0 = time.perf_counter()
    KeywordIndex.write(texts(data, n), folder / "bm25")
    t1 = time.perf_counter()
    kind = choose_kind(n, settings.index_type, settings.dense_exact_max, settings.dense_ivf_min)
    params = DenseIndex.build(vectors(data, n), kind, scratch=folder).save(folder / "dense.faiss")
    t2 = time.perf_counter()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {
        "kind": kind,
        "dense_params": params,
        "build_seconds": round(t2 - t0, 1),
        "bm25_seconds": round(t1 - t0, 1),
        "dense_seconds": round(t2 - t1, 1),
        "build_peak_rss_mb": round(peak_mb()),
        "index_mb": round(size / 2**20),
    }


class _Passages:
    """Passages read by row from passages.jsonl (line offsets in memory, texts on disk)."""

    def __init__(self, path: Path, n: int) -> None:
        from qa.chunking import Passage

        self._passage = Passage
        self._fh = open(path, "rb")  # noqa: SIM115  (held for the process)
        offsets = [0]
        for _ in range(n):
            offsets.append(offsets[-1] + len(self._fh.readline()))
        self._offsets = np.array(offsets, dtype=np.int64)
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, row: int):  # type: ignore[no-untyped-def]
        self._fh.seek(int(self._offsets[row]))
        text = json.loads(self._fh.readline())["text"]
        return self._passage(f"p{row}", f"p{row}", "s0", [], "body", 0, len(text), text)


def serve(data: Path, n: int, folder: Path, queries: int) -> dict[str, object]:
    import faiss

    from qa.index.dense import DenseIndex
    from qa.index.keyword import KeywordIndex
    from qa.retrieval import Retriever

    faiss.omp_set_num_threads(1)
    base = rss_mb()
    keyword = KeywordIndex.load(folder / "bm25")
    record = json.loads((folder / "kind.json").read_text())
    dense = DenseIndex.load(folder / "dense.faiss", record["kind"], record["params"])

    class Index:
        passages = _Passages(data / "passages.jsonl", n)

        def __init__(self) -> None:
            self.dense, self.keyword = dense, keyword

        def dense_vectors(self, rows: np.ndarray) -> np.ndarray:
            return self.dense.vectors(rows)

    index = Index()
    loaded = rss_mb()
    retriever = Retriever(
        index, lambda t: np.zeros((len(t), 384), np.float32), sentence_weight=0.0, reference_boost=0.0
    )  # type: ignore[arg-type]
    qtexts = [json.loads(line)["text"] for line in _query_lines(data)][:queries]
    qvecs = np.asarray(np.load(data / "queries.f16.npy")[: len(qtexts)], dtype=np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    for q, v in zip(qtexts[:20], qvecs[:20], strict=True):  # warm up
        retriever.search(q, 10, query_vector=v)
    search_ms, dense_ms, bm25_ms = [], [], []
    found = []
    for q, v in zip(qtexts, qvecs, strict=True):
        t0 = time.perf_counter()
        retriever.search(q, 10, query_vector=v)
        t1 = time.perf_counter()
        _, ids = dense.search(v[None, :], 10)
        t2 = time.perf_counter()
        keyword.scores(q)
        t3 = time.perf_counter()
        search_ms.append((t1 - t0) * 1000)
        dense_ms.append((t2 - t1) * 1000)
        bm25_ms.append((t3 - t2) * 1000)
        found.append(ids[0])
    served = rss_mb()
    exact = _exact_top10(data, n, qvecs)
    recall = _recall(exact, np.array(found))
    # the product's own search asks the dense index for its fusion depth (100), whose top 10 is what the
    # candidate list holds; and the candidate list (HNSW's efSearch) against recall and time
    deep = np.array([dense.search(v[None, :], 100)[1][0][:10] for v in qvecs])
    by_ef: dict[str, object] = {}
    if record["kind"] == "hnsw":
        for ef in (32, 64, 128, 256):
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = ef
            by_ef[str(ef)] = _swept(dense.index, qvecs, exact, params)
    by_nprobe: dict[str, object] = {}  # the lists an IVF search probes against recall and time
    if record["kind"] == "ivf":
        nlist = int(record["params"]["nlist"])
        for nprobe in sorted({max(1, nlist // d) for d in (128, 64, 32, 16, 8)}):
            params = faiss.SearchParametersIVF()  # type: ignore[attr-defined]
            params.nprobe = nprobe
            by_nprobe[str(nprobe)] = _swept(dense.index, qvecs, exact, params)

    return {
        "queries": len(qtexts),
        "search_p50_ms": pct(search_ms, 50),
        "search_p95_ms": pct(search_ms, 95),
        "dense_p50_ms": pct(dense_ms, 50),
        "dense_p95_ms": pct(dense_ms, 95),
        "bm25_p50_ms": pct(bm25_ms, 50),
        "bm25_p95_ms": pct(bm25_ms, 95),
        "recall_at_10": round(recall, 4),
        "recall_at_10_depth_100": round(_recall(exact, deep), 4),
        "recall_by_ef_search": by_ef,
        "recall_by_nprobe": by_nprobe,
        "rss_loaded_mb": round(loaded - base),
        "rss_after_queries_mb": round(served),
    }


def _swept(index: Any, qvecs: np.ndarray, exact: np.ndarray, params: Any) -> dict[str, float]:
    """Recall@10 against ``exact`` and per-query time of a FAISS search with ``params``, one query at a time."""
    ms, got = [], []
    for v in qvecs:
        t0 = time.perf_counter()
        got.append(index.search(v[None, :], 10, params=params)[1][0])
        ms.append((time.perf_counter() - t0) * 1000)
    return {
        "recall_at_10": round(_recall(exact, np.array(got)), 4),
        "p50_ms": pct(ms, 50),
        "p95_ms": pct(ms, 95),
    }


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 2)


def _query_lines(data: Path) -> list[str]:
    bench = ROOT.parent / "shared" / "benchmarks"
    lines: list[str] = []
    for name in ("scifact", "nfcorpus"):
        lines.extend((bench / name / "queries.jsonl").read_text(encoding="utf-8").splitlines())
    return lines


def _recall(best_ids: np.ndarray, found: np.ndarray) -> float:
    """Share of the exact top 10 the dense index returned."""
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(best_ids, found, strict=True))
    return hits / (10 * len(best_ids))


def _exact_top10(data: Path, n: int, qvecs: np.ndarray) -> np.ndarray:
    """Each query's exact top 10 (inner product over the same float16 vectors)."""
    stored = vectors(data, n)
    best = np.full((len(qvecs), 10), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(qvecs), 10), dtype=np.int64)
    for start in range(0, n, 100_000):
        block = stored[start : min(n, start + 100_000)]
        scores = qvecs @ block.T
        ids = np.argpartition(-scores, 9, axis=1)[:, :10]
        cand = np.concatenate([best, np.take_along_axis(scores, ids, axis=1)], axis=1)
        cand_ids = np.concatenate([best_ids, ids + start], axis=1)
        keep = np.argsort(-cand, axis=1)[:, :10]
        best, best_ids = np.take_along_axis(cand, keep, axis=1), np.take_along_axis(cand_ids, keep, axis=1)
    return best_ids


def child(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    if args.child == "build":
        result = build(args.data, args.n, folder)
        (folder / "kind.json").write_text(
            json.dumps({"kind": result["kind"], "params": result["dense_params"]})
        )
    else:
        result = serve(args.data, args.n, folder, args.queries)
    print(json.dumps(result))


def run_child(step: str, args: argparse.Namespace, n: int, folder: Path) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", step, "--n", str(n), "--folder", str(folder)]
    cmd += ["--data", str(args.data), "--queries", str(args.queries)]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": str(os.cpu_count()),
    }
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(rows: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["passages"] for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    panels = [
        ("build seconds", ["build_seconds"]),
        ("memory (MB)", ["build_peak_rss_mb", "rss_after_queries_mb"]),
        ("search ms", ["search_p50_ms", "search_p95_ms"]),
        ("dense recall@10", ["recall_at_10"]),
    ]
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            ax.plot(n, [r[key] for r in rows], marker="o", label=key)
        ax.set_xscale("log")
        ax.set_xlabel("passages")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/scale"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    ap.add_argument("--plot", type=Path, default=ROOT / "bench" / "results" / "scale.png")
    ap.add_argument(
        "--stand-in", action="store_true", help="sizes past the computed vectors use labelled stand-ins"
    )
    ap.add_argument("--child", choices=["build", "serve"])
    ap.add_argument("--n", type=int)
    ap.add_argument("--folder")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    done = json.loads((args.data / "progress.json").read_text())["done"]
    rows = []
    for n in args.sizes:
        if n > done and not args.stand_in:
            print(f"{n}: only {done} vectors computed so far (bench/scale_corpus.py); skipped", flush=True)
            continue
        with tempfile.TemporaryDirectory(prefix="qa-scale-") as tmp:
            row: dict[str, object] = {"passages": n, "real_model_vectors": min(n, done)}
            row.update(run_child("build", args, n, Path(tmp)))
            row.update(run_child("serve", args, n, Path(tmp)))
        print(json.dumps(row), flush=True)
        rows.append(row)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    result = {
        "command": "PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/scale.py " + " ".join(sys.argv[1:]),
        "commit": commit.stdout.strip(),
        "cores": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if rows:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
