"""Ingestion on Ray: the same corpus built in one process and through a local Ray cluster with 1 and 2 worker
nodes (one embedding actor per worker node; the head only schedules), documents, passages and embedded
texts (passages + sentences) per second for each. Writes bench/results/ray_ingest.json.

The corpus is the first ``--docs`` abstracts of BEIR SciFact written as .txt files into a temporary folder.
All nodes run on this machine, so they share its cores: this measures the pipeline and its overhead, not
the speed-up of separate machines.

    PYTHONPATH=. HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python bench/ray_ingest.py [--docs 400] [--precision bfloat16]

``--precision bfloat16`` embeds under torch's bfloat16 autocast everywhere (``QA_EMBED_PRECISION``), in the
single process and in every actor, and writes bench/results/ray_ingest_bfloat16.json.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qa.encoding import Embedder  # noqa: E402
from qa.index.build import build_index  # noqa: E402
from qa.index.manifest import IndexManifest  # noqa: E402
from qa.index.ray_local import LocalRayCluster  # noqa: E402
from qa.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ray_ingest.json"
SCIFACT = Path(os.environ.get("QA_SHARED_DIR") or ROOT.parent / "shared") / "benchmarks" / "scifact"


def write_corpus(folder: Path, docs: int) -> None:
    folder.mkdir(parents=True)
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n >= docs:
                break
            row = json.loads(line)
            (folder / f"scifact_{row['_id']}.txt").write_text(
                f"{row['title']}\n\n{row['text']}\n", encoding="utf-8"
            )


def rates(m: IndexManifest, seconds: float) -> dict[str, float]:
    texts = m.passages + m.sentences
    return {
        "seconds": round(seconds, 2),
        "documents_per_s": round(m.documents / seconds, 2),
        "passages_per_s": round(m.passages / seconds, 2),
        "texts_per_s": round(texts / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args()
    out = RESULTS if args.precision == "float32" else RESULTS.with_name(f"ray_ingest_{args.precision}.json")
    env = os.environ | {"QA_EMBED_PRECISION": args.precision}
    tmp = Path(tempfile.mkdtemp(prefix="ray_ingest"))
    corpus = tmp / "corpus"
    write_corpus(corpus, args.docs)

    embedder = Embedder("all-MiniLM-L6-v2", threads=1, precision=args.precision)
    t0 = time.perf_counter()
    settings = Settings(corpus_dir=corpus, index_dir=tmp / "single", embed_precision=args.precision)
    single = IndexManifest.read(build_index(settings, embedder))
    runs: dict[str, object] = {
        "single process (encode_many: a pass thread per core, 1 torch thread each)": rates(
            single, time.perf_counter() - t0
        )
    }
    print(runs, flush=True)
    for workers in (1, 2):
        cluster = LocalRayCluster(workers=workers, cpus=2, head_cpus=0)
        with cluster as address:
            cmd = [sys.executable, "-m", "qa", "index", "--corpus", str(corpus), "--quiet"]
            cmd += ["--index-dir", str(tmp / f"ray{workers}"), "--ray", address, "--ray-actors", str(workers)]
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, env=env | cluster.env, capture_output=True)
            seconds = time.perf_counter() - t0
        m = IndexManifest.read((tmp / f"ray{workers}" / "current").resolve())
        ray = m.extra["ray"]
        pipeline = float(ray["pipeline_seconds"])
        texts = m.passages + m.sentences
        runs[f"ray, {workers} worker node(s), {workers} actor(s)"] = {
            "command (end to end, incl. connecting and model loads)": rates(m, seconds),
            "pipeline (read, chunk, embed)": rates(m, pipeline),
            "texts_per_s_per_actor": round(texts / pipeline / workers, 2),
            "nodes": ray["nodes"],
            "stage_seconds": m.extra["stage_seconds"],
        }
        print(workers, runs[f"ray, {workers} worker node(s), {workers} actor(s)"], flush=True)
    result = {
        "corpus": f"first {args.docs} BEIR SciFact abstracts as .txt",
        "precision": args.precision,
        "documents": single.documents,
        "passages": single.passages,
        "sentences": single.sentences,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs",
        "runs": runs,
    }
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
