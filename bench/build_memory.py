"""Peak memory and time of the build's two largest index writers at scale, each in a process of its own:
BM25 (bm25s's whole build against ``KeywordIndex.write``, a batch at a time) and the dense index (HNSW-SQ8
built in memory against IVF-SQ8 built a shard at a time into lists on disk); and the facts step
(``extract_facts``) over the documents of ``bench/full_scale.py``, on a shelf as a build has them; and the
build's per-row tables over those documents (the passage table, the sentence table, each passage's sentence
rows), which need no vectors; and what a build keeps per document (``documents``: a million one-passage
documents, PubMed Central's millions of articles in miniature, read onto a shelf and into a passage table);
and the driver's side of a Ray build (``ray driver``: each file's result as a worker makes it, taken in
corpus order onto a shelf, a passage table and shard files).

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/build_memory.py --data /work/scale1m --passages 1000000
    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/build_memory.py --data /work/scale --passages 100000 \
        --parts facts --out bench/results/build_memory_facts.json
    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/build_memory.py --data /work/scale1m --passages 1000000 \
        --parts tables --out bench/results/build_memory_tables.json
    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/build_memory.py --data /work/bm --documents 1000000 \
        --parts documents --out bench/results/build_memory_documents.json
    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/build_memory.py --data /work/bm --documents 100000 \
        --parts 'ray driver' --out bench/results/build_memory_ray_driver_100000.json

Uses the passages and cached vectors of ``bench/scale_corpus.py`` (``documents`` writes its own files of
the benchmarks' abstracts' sentences and needs neither). Reports each part's peak anonymous memory
(RssAnon sampled every 20 ms: the process's own heap, not file pages it maps) beside its peak RSS, and
writes ``bench/results/build_memory.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = (
    "bm25 whole (bm25s)",
    "bm25 batched (KeywordIndex.write)",
    "dense hnsw",
    "dense ivf",
    "facts",
    "tables",
    "documents",
    "ray driver",
)


def _peak_anon() -> dict[str, int]:
    """A sampler thread's running peak of this process's RssAnon, in MB."""
    peak = {"mb": 0}

    def sample() -> None:
        while True:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        peak["mb"] = max(peak["mb"], int(line.split()[1]) // 1024)
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    return peak


class _First:
    """The first ``n`` rows of a row file, as the dense index reads rows (slices and arrays of rows)."""

    def __init__(self, rows: Any, n: int) -> None:
        self.rows, self.n = rows, n
        self.shape = (n, rows.shape[1])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.rows[slice(*i.indices(self.n))]
        return self.rows[i]  # an array of rows below n (the quantizer's training sample)


def child(part: str, data: Path, n: int, folder: Path, documents: int) -> dict[str, object]:
    from qa.index.dense import DenseIndex
    from qa.index.keyword import KeywordIndex
    from qa.index.tables import RowFile

    peak = _peak_anon()
    time.sleep(0.1)
    before = peak["mb"]

    def texts() -> Iterator[str]:
        with open(data / "passages.jsonl", encoding="utf-8") as fh:
            for line in itertools.islice(fh, n):
                yield json.loads(line)["text"]

    started = time.perf_counter()
    found: dict[str, object] = {}
    if part == "facts":
        found = _facts(data, n, folder)
    elif part == "tables":
        found = _tables(data, n, folder)
    elif part == "documents":
        found = _documents(data, documents, folder)
    elif part == "ray driver":
        found = _ray_driver(data, documents, folder)
    elif part == PARTS[0]:
        KeywordIndex.build(texts()).save(folder / "bm25")
    elif part == PARTS[1]:
        KeywordIndex.write(texts(), folder / "bm25")
    elif part.startswith("dense "):
        rows = RowFile(data / "vectors.f16.npy")  # read a batch at a time, converted to float32
        if len(rows) < n:
            raise SystemExit(f"only {len(rows)} vectors in {data}")
        kind = part.split()[-1]
        DenseIndex.build(_First(rows, n), kind, scratch=folder).save(folder / "dense.faiss")  # type: ignore[arg-type]
        rows.close()
    seconds = time.perf_counter() - started
    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    return {
        "part": part,
        "seconds": round(seconds, 1),
        "anon_before_mb": before,
        "peak_anon_mb": peak["mb"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "files_mb": round(sum(files.values()) / 2**20),
        "qa_code": _code(),
        **found,
    }


def _words(texts: list[str]) -> list[int]:
    """Tokens counted in words plus the model's two markers (the facts step needs spans, not the model)."""
    return [len(t.split()) + 2 for t in texts]


def _chunked(data: Path, n: int, folder: Path) -> tuple[Any, Any, Any]:
    """``bench/full_scale.py``'s documents for ``n`` passages read onto a shelf in ``folder`` and chunked as
    a build chunks them (in words: the model is not loaded): the corpus, the shelf and the passage table."""
    from qa.chunking import chunk_document
    from qa.corpus import load_corpus
    from qa.passage_table import PassageTable
    from qa.shelf import DocumentShelf

    corpus_dir = data / f"full-{n}" / "corpus"
    if not corpus_dir.is_dir():
        raise SystemExit(f"no {corpus_dir}: run bench/full_scale.py --data {data} --passages {n} first")
    shelf = DocumentShelf(folder)
    corpus = load_corpus(corpus_dir, shelf=shelf)
    passages = PassageTable(shelf)
    for doc in corpus.documents:
        passages.add(doc, chunk_document(doc, _words, max_tokens=150, overlap=1))
    return corpus, shelf, passages


def _facts(data: Path, n: int, folder: Path) -> dict[str, object]:
    """The facts step over the chunked documents (``_chunked``)."""
    from qa.facts.build import extract_facts
    from qa.facts.vocab import Vocabulary

    corpus, shelf, passages = _chunked(data, n, folder)
    started = time.perf_counter()
    records = extract_facts(corpus.documents, passages, Vocabulary.for_corpus(corpus.root))
    seconds = time.perf_counter() - started
    shelf.close()
    return {
        "documents": len(corpus.documents),
        "chunks": len(passages),
        "trials": len(records.trials),
        "extract_facts_seconds": round(seconds, 1),  # of "seconds", the rest reading and chunking
    }


def _tables(data: Path, n: int, folder: Path) -> dict[str, object]:
    """The build's per-row tables: the passage table (``_chunked``), then the sentence table made from it
    twice over as a build has them side by side (one for the model's texts, one for the index files), its
    sentence texts read through once and each passage's sentence rows saved."""
    import numpy as np

    from qa.index.build import sentence_table

    corpus, shelf, passages = _chunked(data, n, folder)
    chunked = time.perf_counter()
    for_texts, for_indexes = sentence_table(passages), sentence_table(passages)
    tabled = time.perf_counter()
    chars = sum(len(t) for t in for_texts.texts(corpus))
    if hasattr(for_indexes, "save_passage_table"):
        for_indexes.save_passage_table(folder / "passage_sentences.npy")
    else:  # the code before it (a build's tables whole in memory)
        np.save(folder / "passage_sentences.npy", for_indexes.passage_table())
    done = time.perf_counter()
    shelf.close()
    return {
        "documents": len(corpus.documents),
        "chunks": len(passages),
        "sentences": len(for_texts),
        "sentence_chars": chars,
        "sentence_tables_seconds": round(tabled - chunked, 1),
        "texts_and_saved_rows_seconds": round(done - tabled, 1),
    }


def _document_files(data: Path, n: int) -> Path:
    """A corpus folder of ``n`` short text files (two or three sentences of a benchmark abstract each: real
    text; named as PubMed Central's ids), written once (resumed where a run stopped)."""
    from scale_corpus import BENCHMARKS, abstracts

    folder = data / f"documents-{n}"
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    sources = abstracts(BENCHMARKS)
    for k in range(n):
        sentences = sources[k % len(sources)]
        at = (k // len(sources)) % (len(sentences) - 1)
        (folder / f"PMC{9_000_000 + k}.txt").write_text(" ".join(sentences[at : at + 2 + k % 2]) + "\n")
    (folder / ".complete").write_text("")
    return folder


def _documents(data: Path, n: int, folder: Path) -> dict[str, object]:
    """What a build keeps per document: ``n`` short files read onto a shelf (``load_corpus``: the corpus
    hash's entries, the repeated-ids check) and chunked into a passage table over it, as a build does; then
    a tenth of the documents looked up by id on both, shuffled."""
    import numpy as np

    from qa.chunking import chunk_document
    from qa.corpus import load_corpus
    from qa.passage_table import PassageTable
    from qa.shelf import DocumentShelf

    corpus_dir = _document_files(data, n)
    written = time.perf_counter()
    shelf = DocumentShelf(folder)
    corpus = load_corpus(corpus_dir, shelf=shelf)
    read = time.perf_counter()
    table = PassageTable(shelf)
    for doc in corpus.documents:
        table.add(doc, chunk_document(doc, _words, max_tokens=150, overlap=1))
    tabled = time.perf_counter()
    asked = [f"PMC{9_000_000 + k}" for k in np.random.default_rng(5).permutation(n)[: n // 10].tolist()]
    found = sum(shelf.get(i) is not None and len(table.rows_of(i)) > 0 for i in asked)
    looked = time.perf_counter()
    counts = {"documents": len(shelf), "chunks": len(table)}
    shelf.close()
    return {
        **counts,
        "found": found,
        "read_seconds": round(read - written, 1),
        "tabled_seconds": round(tabled - read, 1),
        "lookups_per_second": round((n // 10) / (looked - tabled)),  # shelf.get + table.rows_of, a tenth
    }


def _ray_driver(data: Path, n: int, folder: Path) -> dict[str, object]:
    """The driver's side of a Ray build over ``n`` short files (``qa.index.distributed.InOrder``): each file's
    result made as a Ray worker makes it (``read_and_chunk``: read, chunked with the model's tokenizer), here in
    this process and with no cluster, with vectors of the right size but zeros (their values are not what is
    measured; embedding them is the actors' hours); put a batch at a time, each batch reversed (results out of
    order wait); then the corpus, and the shards' vectors as row files, as the build's embed step reads them."""
    from qa.corpus import corpus_files
    from qa.index.distributed import DOCS_PER_BATCH, InOrder, _shard_vectors, read_and_chunk
    from qa.settings import Settings
    from qa.shelf import DocumentShelf

    corpus_dir = _document_files(data, n)
    started = time.perf_counter()
    settings = Settings(corpus_dir=corpus_dir, index_dir=folder)
    files = corpus_files(corpus_dir)
    shards = folder / "shards"
    shards.mkdir()
    shelf = DocumentShelf(folder)
    results = InOrder(corpus_dir, len(files), shelf, shards)
    settings_json, dim = settings.model_dump_json(), 384
    batch: list[dict[str, Any]] = []
    for i, name in enumerate(files.names):
        batch.append(
            read_and_chunk(
                {"index": i, "path": name},
                root=str(corpus_dir),
                model=settings.model,
                settings_json=settings_json,
            )
        )
        if len(batch) == DOCS_PER_BATCH or i == len(files) - 1:
            for row in reversed(batch):
                n_p, n_s = row["counts"]
                results.put(row["index"], row["payload"], n_p, n_s, bytes(4 * dim * (n_p + n_s)))
            batch = []
    corpus = results.corpus()
    taken = time.perf_counter()
    p_vecs, s_vecs = _shard_vectors(shards, results.totals, dim, folder)
    counts = {"documents": len(corpus.documents), "passages": len(p_vecs), "sentences": len(s_vecs)}
    done = time.perf_counter()
    results.close()
    shelf.close()
    return {
        **counts,
        "read_chunk_take_seconds": round(taken - started, 1),
        "shard_vectors_seconds": round(done - taken, 1),
    }


def _code() -> str:
    """The commit of the tree the ``qa`` package is imported from (another one's through PYTHONPATH)."""
    import qa

    where = Path(qa.__file__).resolve().parents[1]
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=where)
    dirty = subprocess.run(["git", "status", "--short", "qa"], capture_output=True, text=True, cwd=where)
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/scale1m"))
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--documents", type=int, default=1_000_000, help="for the documents part")
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "build_memory.json")
    ap.add_argument("--child", choices=PARTS)
    ap.add_argument("--folder", type=Path)
    args = ap.parse_args()
    if args.child:
        print(
            json.dumps(child(args.child, args.data, args.passages, args.folder, args.documents)), flush=True
        )
        return
    rows = []
    for part in args.parts:
        folder = Path(tempfile.mkdtemp(prefix="qa-build-memory-", dir=args.data))  # on the data's disk
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    part,
                    "--folder",
                    str(folder),
                    "--data",
                    str(args.data),
                    "--passages",
                    str(args.passages),
                    "--documents",
                    str(args.documents),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    args.out.write_text(
        json.dumps(
            {
                "command": "PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/build_memory.py "
                + shlex.join(sys.argv[1:]),
                "commit": commit.stdout.strip(),
                "passages": args.passages,
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
