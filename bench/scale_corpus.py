"""Passages of real text at scale, and their vectors from the real model, cached and resumable.

The issue's scale benchmark needs 10^4 .. 10^6 passages of real scientific text. The SciFact and NFCorpus
corpora hold ~8,800 abstracts (~80k sentences); a passage here is a run of 1-2 consecutive sentences of one
abstract followed by one sentence of another (both chosen by a seeded generator), cut at ``--words`` words
(48: ~70 word pieces), so passage n is the same text on every machine and every run, and no two passages are
the same text. Short passages because the forward pass costs ~5 GFLOP for a 220-word-piece passage: on this
2-core machine 160-word passages embed at ~20/s (10^6 would take ~14 h), 48-word ones at ~4-5x that. Queries are SciFact's claims and
NFCorpus's queries (used for latency and for recall against exact search, never for relevance).

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/scale_corpus.py --out /work/scale --passages 1000000

writes ``passages.jsonl`` (one {"id", "text"} per line, written once), ``queries.f16.npy`` and
``vectors.f16.npy`` (N x 384 float16, filled in order) with ``progress.json`` recording how many rows are
done: kill it at any time and run it again to go on (with the same --passages and --words).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
DIM = 384


def abstracts(root: Path) -> list[list[str]]:
    """The sentences of every abstract of SciFact and NFCorpus, in file order."""
    from qa.sentences import split_sentences

    out = []
    for name in ("scifact", "nfcorpus"):
        with open(root / name / "corpus.jsonl", encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                text = " ".join(doc.get("text", "").split())
                sentences = [text[a:b] for a, b in split_sentences(text)]
                if len(sentences) >= 3:
                    out.append(sentences)
    return out


def passages(docs: list[list[str]], n: int, words: int, seed: int = 17) -> Iterator[str]:
    """``n`` distinct passages: a run of one abstract then a run of another."""
    rng = random.Random(seed)
    seen: set[bytes] = set()
    made = 0
    while made < n:
        a, b = rng.randrange(len(docs)), rng.randrange(len(docs))
        first, second = docs[a], docs[b]
        la, lb = rng.randint(1, 2), 1
        ia, ib = rng.randrange(max(1, len(first) - la + 1)), rng.randrange(max(1, len(second) - lb + 1))
        text = " ".join(first[ia : ia + la] + second[ib : ib + lb])
        cut = text.split()
        if len(cut) > words:
            text = " ".join(cut[:words])
        key = hashlib.blake2b(text.encode(), digest_size=12).digest()
        if key in seen:
            continue
        seen.add(key)
        made += 1
        yield text


def queries(root: Path) -> list[str]:
    out = []
    for name in ("scifact", "nfcorpus"):
        with open(root / name / "queries.jsonl", encoding="utf-8") as fh:
            out.extend(json.loads(line)["text"] for line in fh)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/work/scale"))
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--benchmarks", type=Path, default=BENCHMARKS)
    ap.add_argument("--words", type=int, default=48, help="longest passage, in words")
    ap.add_argument("--batch", type=int, default=4096, help="rows embedded between two progress saves")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),
        default="float32",
        help="passes under bfloat16 autocast: ~2.5x faster on a CPU with AVX512-BF16 (cosine >= 0.9999)",
    )
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    texts_path, vec_path, progress_path = (
        out / "passages.jsonl",
        out / "vectors.f16.npy",
        out / "progress.json",
    )

    if not texts_path.exists():
        docs = abstracts(args.benchmarks)
        tmp = texts_path.with_suffix(".partial")
        with open(tmp, "w", encoding="utf-8") as fh:
            for i, text in enumerate(passages(docs, args.passages, args.words)):
                fh.write(json.dumps({"id": f"p{i}", "text": text}) + "\n")
        os.replace(tmp, texts_path)
        print(f"{args.passages} passages from {len(docs)} abstracts -> {texts_path}", flush=True)
    with open(texts_path, encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    n = len(texts)

    from qa.encoding import Embedder
    from qa.settings import Settings

    embedder = Embedder(Settings().model, threads=args.threads, precision=args.precision)
    q_path = out / "queries.f16.npy"
    if not q_path.exists():
        np.save(q_path, embedder.encode(queries(args.benchmarks)).astype(np.float16))

    if vec_path.exists():
        vectors = np.load(vec_path, mmap_mode="r+")
        if vectors.shape != (n, DIM):
            raise SystemExit(f"{vec_path} has shape {vectors.shape}, expected {(n, DIM)}: remove it")
    else:
        vectors = np.lib.format.open_memmap(vec_path, mode="w+", dtype=np.float16, shape=(n, DIM))
    progress = json.loads(progress_path.read_text()) if progress_path.exists() else {}
    done = progress.get("done", 0)
    if done and progress.get("precision", "float32") != args.precision:
        raise SystemExit(
            f"{vec_path} was begun at {progress.get('precision', 'float32')}: use it or remove it"
        )
    started, first = time.perf_counter(), done
    while done < n:
        stop = min(n, done + args.batch)
        vectors[done:stop] = embedder.encode_many(texts[done:stop], workers=1).astype(np.float16)
        vectors.flush()
        done = stop
        rate = (done - first) / (time.perf_counter() - started)
        progress_path.write_text(
            json.dumps(
                {"done": done, "total": n, "passages_per_second": round(rate, 1), "precision": args.precision}
            )
        )
        print(f"{done}/{n} ({rate:.0f}/s)", flush=True)


if __name__ == "__main__":
    main()
