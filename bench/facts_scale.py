"""The fact store at scale: filing, opening and querying 10^4 .. 10^6 trials (facts.sqlite3 against one JSON).

The trials are real: those the product extracts from the seed corpus and every paper of ../shared/papers
(JATS and PDF), recombined: copy ``c`` of the whole set gets new ids (``<id>.r<c>``), fresh NCT numbers,
names with ``-R<c>`` and documents ``<doc>~<c>``, its fields (drugs, classes, targets, conditions, phases,
outcomes, quotes) untouched. So every question the dev sets ask of trials has ``copies`` times the answers,
and asked of one copy's documents (``documents=``, as a lab asks of its own papers) exactly the answers
of the original: each size's run checks that it gets them.

For each size, in a subprocess of its own: the store is filed from a stream of trials (``write_fact_rows``),
opened, and asked: trial lookups by NCT id and by name; every dev trial question scoped to one copy's
documents (``filter_trials``, then ``nearest_trials`` as the honest negative does); the same questions over
the whole store (their answers grow with the copies). RSS is the process's after opening and after the
questions. Up to ``--json-max`` trials the old way is measured too: the JSON file such a store was, loaded
whole (``json.loads`` and the records; the old store also indexed them in memory, not counted here).

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/facts_scale.py --sizes 10000 100000 1000000

Writes ``bench/results/facts_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "facts_scale.json"


def shared() -> Path:
    for candidate in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if (candidate / "papers").is_dir():
            return candidate
    raise SystemExit("../shared/papers is missing")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3)


def base_records():  # type: ignore[no-untyped-def]
    """The facts the product extracts from the seed corpus and the shared papers (passages of 200 words)."""
    from qa.chunking import chunk_document
    from qa.corpus import load_corpus, load_document
    from qa.facts import Vocabulary
    from qa.facts.build import extract_facts

    papers = shared() / "papers"
    docs = list(load_corpus(ROOT / "corpus").documents)
    docs += [load_document(p, papers, None, 20_000_000) for p in sorted(papers.glob("*.xml"))]
    docs += [load_document(p, papers, None, 20_000_000) for p in sorted(papers.glob("*.pdf"))]

    def words(texts: list[str]) -> list[int]:  # passages only place the evidence here: words, not tokens
        return [len(t.split()) + 2 for t in texts]

    passages = [p for d in docs for p in chunk_document(d, words, max_tokens=200, overlap=20)]
    return extract_facts(docs, passages, Vocabulary.load())


def copy_of(trial, c: int):  # type: ignore[no-untyped-def]
    """Copy ``c`` of ``trial``: its own id, its documents ``<doc>~<c>``; names and registry ids kept (one
    trial described by many papers, as in PubMed Central)."""
    from dataclasses import replace

    from qa.facts.model import Trial

    t = Trial.from_dict(trial.to_dict())
    return replace(
        t,
        id=f"{t.id}.r{c}",
        evidence=[replace(e, doc_id=f"{e.doc_id}~{c}", passage_id=f"{e.passage_id}~{c}") for e in t.evidence],
    )


def copies(records, n: int) -> Iterator:  # type: ignore[no-untyped-def]
    made = 0
    for c in range(10**9):
        for t in records.trials:
            if made == n:
                return
            yield copy_of(t, c)
            made += 1


def signature(trials) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """Where each trial is quoted from, its copy number dropped."""
    return [(t.primary.doc_id.rsplit("~", 1)[0], t.primary.start) for t in trials]


def questions() -> list[str]:
    """Every question of the dev sets (../shared/eval, chat turns too) and of the project's own test data."""
    files = sorted((shared() / "eval").rglob("*.jsonl")) + sorted((ROOT / "tests" / "data").glob("*.jsonl"))
    out = []
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            turns = row.get("turns") if isinstance(row.get("turns"), list) else []
            out += [x for x in [row.get("question"), *turns] if isinstance(x, str)]
    return list(dict.fromkeys(out))


def write_size(n: int, work: Path) -> dict[str, object]:
    """File ``n`` trials at ``work/facts-<n>.sqlite3``; the original answers go to ``work/expected.json``."""
    from qa.facts import FactStore, parse_question
    from qa.facts.store import write_fact_rows

    records = base_records()
    path = work / f"facts-{n}.sqlite3"
    started = time.perf_counter()
    write_fact_rows(path, records.vocab, copies(records, n), records.drugs.values())
    out: dict[str, object] = {
        "trials": n,
        "copies": -(-n // len(records.trials)),
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "write_s": round(time.perf_counter() - started, 2),
        "write_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    base = FactStore.from_records(records)
    expected = {}
    for q in questions():
        query = parse_question(base.vocab, q, base)
        if query is not None:
            expected[q] = signature(base.filter_trials(query))
    docs = sorted({e.doc_id for t in records.trials for e in t.evidence})
    (work / "expected.json").write_text(json.dumps({"docs": docs, "answers": expected}))
    return out


def run_size(n: int, work: Path, json_max: int) -> dict[str, object]:
    """One size: filed in a child process, then opened and asked in this one (fresh: nothing else loaded)."""
    from qa.facts import FactStore, parse_question

    cmd = [sys.executable, __file__, "--write", str(n), "--work", str(work)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    saved = json.loads((work / "expected.json").read_text())
    docs, expected = saved["docs"], {q: [tuple(x) for x in v] for q, v in saved["answers"].items()}
    path = work / f"facts-{n}.sqlite3"
    before = rss_mb()
    started = time.perf_counter()
    store = FactStore(path)
    out["open_s"] = round(time.perf_counter() - started, 3)
    out["rss_open_mb"] = round(rss_mb() - before, 1)
    for q in list(expected)[:5]:  # warm: the vocabulary's lazily built matchers, SQLite's first pages
        store.answer_trials(q)
    rng = random.Random(7)
    sample = [store.trials[rng.randrange(n)] for _ in range(300)]
    by_id, by_name = [], []
    for t in sample:
        started = time.perf_counter()
        found = store.trial(t.id)
        by_id.append((time.perf_counter() - started) * 1e3)
        assert found == t, t.id
        key = t.name or (t.nct_ids or [t.id])[0]
        started = time.perf_counter()
        found = store.trial(key)  # the first paper's record of that trial
        by_name.append((time.perf_counter() - started) * 1e3)
    out["lookup_by_id_ms"] = {"p50": pct(by_id, 50), "p95": pct(by_id, 95), "n": len(by_id)}
    out["lookup_by_name_or_nct_ms"] = {"p50": pct(by_name, 50), "p95": pct(by_name, 95), "n": len(by_name)}
    scoped, nearest, mismatches = [], [], []
    copies_n = int(out["copies"])  # type: ignore[call-overload]
    for q, ids in expected.items():
        c = rng.randrange(max(1, copies_n - 1))  # a complete copy
        mine = [f"{d}~{c}" for d in docs]
        query = parse_question(store.vocab, q, store)
        assert query is not None
        started = time.perf_counter()
        found = store.filter_trials(query, documents=mine)
        scoped.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        store.nearest_trials(query, documents=mine)
        nearest.append((time.perf_counter() - started) * 1e3)
        if signature(found) != ids:
            mismatches.append(q)
    out["questions"] = len(expected)
    out["scoped_ms"] = {"p50": pct(scoped, 50), "p95": pct(scoped, 95)}
    out["scoped_nearest_ms"] = {"p50": pct(nearest, 50), "p95": pct(nearest, 95)}
    out["scoped_answers_differing_from_the_original"] = mismatches
    whole, matched = [], []
    for q in list(expected)[:20]:
        started = time.perf_counter()
        found = store.answer_trials(q) or []
        whole.append((time.perf_counter() - started) * 1e3)
        matched.append(len(found))
    out["whole_store_ms"] = {"p50": pct(whole, 50), "p95": pct(whole, 95), "questions": len(whole)}
    out["whole_store_matches_mean"] = round(sum(matched) / len(matched), 1)
    out["rss_after_questions_mb"] = round(rss_mb() - before, 1)
    if n <= json_max:
        out["json"] = json_baseline(path, store, work)
    return out


def json_baseline(path: Path, store, work: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The one-JSON way: the same facts as a facts.json, loaded whole in a fresh process."""
    blob = work / "facts.json"
    with blob.open("w", encoding="utf-8") as fh:  # written a trial at a time: the parent need not hold them
        fh.write('{"version": 1, "vocabulary": ')
        json.dump(store.vocab.to_dict(), fh, ensure_ascii=False)
        fh.write(', "trials": [')
        for i, t in enumerate(store.trials):
            fh.write("," if i else "")
            json.dump(t.to_dict(), fh, ensure_ascii=False)
        fh.write('], "drugs": ')
        json.dump([d.to_dict() for d in store.drugs()], fh, ensure_ascii=False)
        fh.write(', "learned": [], "ocr": []}')
    code = (
        "import json, time, sys; sys.path.insert(0, 'bench'); from facts_scale import rss_mb; "
        "from qa.facts.model import FactRecords; before = rss_mb(); t = time.perf_counter(); "
        f"r = FactRecords.from_dict(json.loads(open({str(blob)!r}, encoding='utf-8').read())); "
        "print(json.dumps({'load_s': round(time.perf_counter() - t, 2), 'rss_mb': round(rss_mb() - before, 1)}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["file_mb"] = round(blob.stat().st_size / 2**20, 1)
    blob.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--json-max", type=int, default=100_000, help="largest size also loaded as one JSON")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a single size, in this process
    parser.add_argument("--write", type=int, help=argparse.SUPPRESS)  # file a single size
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        print(json.dumps(write_size(args.write, args.work)))
        return
    if args.one:
        print(json.dumps(run_size(args.one, args.work, args.json_max)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="facts-scale-") as tmp:
        for n in args.sizes:
            cmd = [sys.executable, __file__, "--one", str(n), "--work", tmp, "--json-max", str(args.json_max)]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
            for f in Path(tmp).glob("facts-*.sqlite3"):
                f.unlink()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    RESULTS.write_text(
        json.dumps(
            {
                "command": "PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/facts_scale.py --sizes "
                + " ".join(map(str, args.sizes)),
                "commit": commit.stdout.strip(),
                "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
                "sizes": rows,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
