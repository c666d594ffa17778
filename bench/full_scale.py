"""A full product build at scale from cached vectors, then POST /api/ask against it: the issue's ask bar.

``bench/scale.py`` measures the search indexes alone (BM25, dense, fusion). This builds everything a server
loads (the store of passages and sentences, BM25 over passages and over sentences, the dense index, the
sentence vectors, facts, lexicon, manifest) with the product's own ``assemble_build``, from the passages
and vectors ``bench/scale_corpus.py`` wrote, then starts ``qa serve`` on it and times POST /api/ask over
HTTP, one question at a time (the question's forward pass included):

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/full_scale.py --data /work/scale --passages 1000000

The corpus: ``--per-doc`` consecutive scale passages make one text document (a paragraph each), written to
``<data>/full-<N>/corpus``; every scale passage is one product passage (its offsets, sentences and
reference numbers found in the document as the chunker would), so its vector is the real model's, read
from the cache instead of recomputed. Sentence vectors are **stand-ins**: each sentence gets its passage's
vector (the cache has none of its own; 2.5 sentences a passage would take ~3 h more to embed), which
serves the timings and memory but not relevance. The questions are SciFact claims and NFCorpus queries.
Writes ``bench/results/full_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import _query_lines, texts  # noqa: E402  (the scale bench's readers)


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def write_corpus(data: Path, n: int, per_doc: int, folder: Path) -> None:
    if (folder / ".complete").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rows = texts(data, n)
    for k, start in enumerate(range(0, n, per_doc)):
        body = "\n\n".join(rows[start : start + per_doc])
        (folder / f"scale_{k:06d}.txt").write_text(body + "\n", encoding="utf-8")
    (folder / ".complete").write_text("")


def build(data: Path, n: int, per_doc: int, out: Path) -> dict[str, object]:
    """The product's full build (``assemble_build``) over scale passages, their vectors from the cache."""
    from qa.chunking import Passage, passage_id
    from qa.corpus import load_corpus
    from qa.documents import reference_numbers
    from qa.encoding import Embedder
    from qa.index.build import VECTOR_BATCH, Stopwatch, assemble_build, new_build_folder, sentence_table
    from qa.index.tables import RowFile, RowWriter
    from qa.passage_table import PassageTable
    from qa.sentences import split_sentences
    from qa.settings import Settings
    from qa.shelf import DocumentShelf

    started = time.perf_counter()
    settings = Settings(corpus_dir=out / "corpus", index_dir=out / "index")
    (out / "index").mkdir(parents=True, exist_ok=True)
    shelf = DocumentShelf(out / "index")  # as the product's build_index: the documents on disk
    corpus = load_corpus(out / "corpus", shelf=shelf)
    rows = texts(data, n)
    clock = Stopwatch()
    passages = PassageTable(shelf)  # as the product's chunk_corpus keeps them
    files = [d.meta.file for d in corpus.documents]
    if files != sorted(files):
        raise SystemExit("the corpus is not read in file order")
    for k, doc in enumerate(corpus.documents):
        sections = doc.section_index()
        at = 0
        doc_passages: list[Passage] = []
        for row in range(k * per_doc, min(n, (k + 1) * per_doc)):
            text = rows[row]
            start = doc.text.index(text, at)
            end = at = start + len(text)
            block = next(b for b in doc.blocks if b.start <= start < b.end)
            path = doc.section_path(block.section_id) if block.section_id in sections else []
            doc_passages.append(
                Passage(
                    id=passage_id(doc.id, start, end),
                    doc_id=doc.id,
                    section_id=block.section_id,
                    section=path,
                    kind="body",
                    start=start,
                    end=end,
                    text=text,
                    refs=reference_numbers(text),
                    sentences=split_sentences(doc.text, start, end),
                    tokens=0,
                )
            )
        passages.add(doc, doc_passages)
    del rows  # the passages' texts are their documents' now
    if len(passages) != n:
        raise SystemExit(f"{len(passages)} passages found in the corpus, expected {n}")
    clock.lap("passages")
    vectors = RowFile(data / "vectors.f16.npy")  # read by pread: no mapped pages in the build's RSS
    done = json.loads((data / "progress.json").read_text())["done"]
    if done < n:
        raise SystemExit(f"only {done} vectors computed: run bench/scale_corpus.py first")

    def embed(scratch: Path) -> tuple[RowFile, RowFile]:
        """Float32 row files in ``scratch``, written a batch at a time as the product's ``embed_build``."""
        sentences = sentence_table(passages)
        dim = vectors.shape[1]
        with (
            RowWriter(scratch / "p.npy", (n, dim)) as p_out,
            RowWriter(scratch / "s.npy", (len(sentences), dim)) as s_out,
        ):
            for at in range(0, n, VECTOR_BATCH):
                block = vectors[at : min(n, at + VECTOR_BATCH)].astype(np.float32)
                p_out.write(at, block)
                rows = [sentences.of_passage(i) for i in range(at, at + len(block))]
                first, last = rows[0][0], rows[-1][-1]  # a passage's sentences are its own (no overlap)
                stand_ins = np.empty((last + 1 - first, dim), dtype=np.float32)
                for i, r in enumerate(rows):  # stand-ins: a sentence's passage's vector
                    stand_ins[np.asarray(r) - first] = block[i]
                s_out.write(first, stand_ins)
        return RowFile(p_out.path), RowFile(s_out.path)

    embedder = Embedder(settings.model, threads=1)  # for the manifest's model record only
    final = assemble_build(
        settings, embedder, new_build_folder(out / "index"), corpus, passages, embed, started, clock
    )
    shelf.close()
    manifest = json.loads((final / "manifest.json").read_text())
    return {
        "passages": n,
        "documents": len(corpus.documents),
        "sentences": manifest["sentences"],
        "dense": manifest["dense"],
        "build_seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": {k: round(v, 1) for k, v in clock.seconds.items()},
        "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        # the facts and lexicon steps' forked child (from 20,000 passages), its pages shared with the build's
        "steps_child_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "index_mb": round(sum(f.stat().st_size for f in final.rglob("*") if f.is_file()) / 2**20),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and its children (the server and its model process)."""
    total = rss_mb(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        total += tree_rss_mb(int(child))
    return total


def serve(out: Path, questions: int) -> dict[str, object]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(_code()),
        "HF_HUB_OFFLINE": "1",
        "QA_CORPUS_DIR": str(out / "corpus"),
        "QA_INDEX_DIR": str(out / "index"),
        "QA_RATE_LIMIT_PER_MINUTE": "0",
    }
    cmd = [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    server = subprocess.Popen(cmd, env=env, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"qa serve exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            ready = time.perf_counter() - started
            loaded = tree_rss_mb(server.pid)
            asked = [json.loads(line)["text"] for line in _query_lines(out)][: questions + 20]
            first = []
            for q in asked[:20]:  # warm up, the first question's lazy loads timed apart
                t0 = time.perf_counter()
                client.post("/api/ask", json={"question": q}).raise_for_status()
                first.append((time.perf_counter() - t0) * 1000)
            ms = []
            for q in asked[20:]:
                t0 = time.perf_counter()
                r = client.post("/api/ask", json={"question": q})
                ms.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            served = tree_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    return {
        "questions": len(ms),
        "ready_seconds": round(ready, 1),
        "first_question_ms": round(first[0], 1),
        "ask_p50_ms": pct(ms, 50),
        "ask_p95_ms": pct(ms, 95),
        "ask_mean_ms": round(statistics.fmean(ms), 2),
        "server_rss_loaded_mb": round(loaded),
        "server_rss_after_mb": round(served),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/scale"))
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--per-doc", type=int, default=100, help="scale passages in one document")
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--serve-only", action="store_true", help="ask against the build already there")
    ap.add_argument("--build-only", action="store_true", help="build, ask nothing")
    ap.add_argument("--label", default="", help="results kept under '<passages> <label>' (other vectors)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "full_scale.json")
    args = ap.parse_args()
    args.data = args.data.resolve()  # the build and the server start in its folder
    folder = args.data / f"full-{args.passages}"
    progress = json.loads((args.data / "progress.json").read_text())
    result: dict[str, object] = {"commit": _commit(), "vectors": progress.get("precision", "float32")}
    if not args.serve_only:
        write_corpus(args.data, args.passages, args.per_doc, folder / "corpus")
        result["build"] = _child(["--build"], args, folder)
    if not args.build_only:
        result["serve"] = serve(folder, args.questions)
    print(json.dumps(result, indent=1))
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    previous[f"{args.passages} {args.label}".strip()] = result
    args.out.write_text(json.dumps(previous, indent=1) + "\n")


def _child(flag: list[str], args: argparse.Namespace, folder: Path) -> dict[str, object]:
    """The build in a process of its own, so its peak memory is its own."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from full_scale import build; "
        "from pathlib import Path; "
        "print(json.dumps(build(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))))"
    )
    cmd = [sys.executable, "-c", code, str(Path(__file__).parent), str(args.data), str(args.passages)]
    cmd += [str(args.per_doc), str(folder)]
    env = {**os.environ, "PYTHONPATH": str(_code()), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, env=env, cwd=folder, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _code() -> Path:
    """The tree whose ``qa`` the build and the server run: PYTHONPATH's first entry when given (another
    commit's worktree, to measure it with this bench), else this one. Its subprocesses start in a folder
    without a ``qa`` package, since ``-c`` and ``-m`` put their working folder first on the path."""
    given = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
    return Path(given).resolve() if given else ROOT


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=_code(), capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--short", "qa"], cwd=_code(), capture_output=True, text=True)
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    main()
