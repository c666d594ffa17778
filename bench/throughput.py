"""Throughput under concurrent load: POST /api/ask vs txtai's GET /search, same model, passages and clients.

Usage: .venv/bin/python bench/throughput.py [--clients 16] [--seconds 60] [--warmup 5] [--skip-txtai]

Builds the index when stale, starts `qa serve` (uvicorn, one worker) on 127.0.0.1 with the rate limit off
(every client here shares one address), and runs N clients that each keep one keep-alive connection busy
with unique questions (templates x drugs, targets and conditions named in the indexed passages) for the
given time. Then, with that server stopped, it times the model alone on batches of the same questions (the
floor of any server embedding them), indexes the same passages with txtai (same model folder, hybrid
dense + BM25) and drives txtai's API `/search` with the same clients and questions. Prints a table and
writes bench/results/throughput.json. txtai is only needed here: `.venv/bin/pip install txtai`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "throughput.json"
TEMPLATES_DRUG_CONDITION = [
    "What is the objective response rate of {a} in {b}?",
    "Does {a} improve overall survival in {b}?",
    "Which trials test {a} in patients with {b}?",
    "What adverse events were reported with {a} in {b}?",
    "Is {a} approved for {b}?",
    "How does {a} work in {b}?",
    "What biomarkers predict response to {a} in {b}?",
    "What is the progression-free survival with {a} for {b}?",
]
TEMPLATES_DRUG_DRUG = [
    "Which trials combine {a} with {b}?",
    "Is {a} plus {b} better than {b} alone?",
    "What toxicity does {a} add to {b}?",
]
TEMPLATES_TARGET_CONDITION = [
    "What is the role of {a} in {b}?",
    "Does {a} expression predict benefit in {b}?",
    "Which drugs block {a} in {b}?",
]


# --- questions -------------------------------------------------------------------------------------


def _named_in(text: str, names: list[str]) -> list[str]:
    lowered = text.lower()
    return [
        n for n in dict.fromkeys(names) if len(n) > 2 and re.search(rf"\b{re.escape(n.lower())}\b", lowered)
    ]


def unique_questions(build: Path, vocabulary_file: Path, n: int) -> list[str]:
    """``n`` distinct questions about entities the indexed passages mention, interleaved across templates."""
    from qa.index.tables import STORE_FILE, Passages, Store

    text = " ".join(p.text for p in Passages(Store(build / STORE_FILE)))
    vocab = json.loads(vocabulary_file.read_text(encoding="utf-8"))
    drugs = _named_in(text, list(vocab["drugs"])) or ["pembrolizumab", "nivolumab"]
    targets = _named_in(text, list(vocab["targets"])) or ["PD-1", "CTLA-4"]
    conditions = _named_in(text, list(vocab["conditions"])) or ["melanoma", "lung cancer"]
    # Entities that do not occur keep the set large and realistic (users ask about drugs the papers lack).
    drugs += [d for d in vocab["drugs"] if d not in drugs]
    conditions += [c for c in vocab["conditions"] if c not in conditions]
    groups = [
        (
            t.format(a=a, b=b)
            for a, b in itertools.product(drugs, conditions)
            for t in TEMPLATES_DRUG_CONDITION
        ),
        (t.format(a=a, b=b) for a, b in itertools.permutations(drugs, 2) for t in TEMPLATES_DRUG_DRUG),
        (
            t.format(a=a, b=b)
            for a, b in itertools.product(targets, conditions)
            for t in TEMPLATES_TARGET_CONDITION
        ),
    ]
    out: dict[str, None] = {}
    for batch in itertools.zip_longest(*groups):
        for q in batch:
            if q is not None:
                out[q] = None
        if len(out) >= n:
            break
    questions = list(out)[:n]
    if len(questions) < n:
        raise SystemExit(f"only {len(questions)} unique questions; lower --seconds or add templates")
    return questions


# --- a lean HTTP/1.1 load generator (keeps the client's own CPU use small on a 2-core machine) -------


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:] if line)
    }
    if b"content-length" in headers:
        return status, await reader.readexactly(int(headers[b"content-length"]))
    body = bytearray()  # chunked
    while True:
        size = int((await reader.readline()).strip(), 16)
        if size == 0:
            await reader.readline()
            return status, bytes(body)
        body.extend(await reader.readexactly(size))
        await reader.readline()


def _ask_request(question: str) -> bytes:
    body = json.dumps({"question": question}).encode()
    return (
        b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def _search_request(question: str) -> bytes:
    return f"GET /search?query={quote(question)}&limit=5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


async def _client(
    port: int, questions: Iterator[str], make: str, deadline: float, load: Load, record: bool
) -> None:
    build = _ask_request if make == "ask" else _search_request
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:  # bounded: stops by itself at the deadline
            question = next(questions)
            started = time.perf_counter()
            try:
                writer.write(build(question))
                status, _ = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                load.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if record:
                load.latencies_ms.append((time.perf_counter() - started) * 1000)
                load.statuses[str(status)] = load.statuses.get(str(status), 0) + 1
                load.errors += status != 200
    finally:
        writer.close()


async def drive(
    port: int, questions: Iterator[str], make: str, clients: int, seconds: float, record: bool
) -> Load:
    load = Load()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_client(port, questions, make, deadline, load, record) for _ in range(clients)))
    load.seconds = time.perf_counter() - started
    return load


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(load: Load) -> dict[str, float | int | dict[str, int]]:
    done = len(load.latencies_ms)
    return {
        "requests": done,
        "seconds": round(load.seconds, 2),
        "throughput_per_s": round(done / load.seconds, 1) if load.seconds else 0.0,
        "p50_ms": round(statistics.median(load.latencies_ms), 1) if done else float("nan"),
        "p95_ms": round(pct(load.latencies_ms, 95), 1),
        "p99_ms": round(pct(load.latencies_ms, 99), 1),
        "errors": load.errors,
        "statuses": load.statuses,
    }


# --- servers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def run_load(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    ready: str,
    make: str,
    questions: list[str],
    args: argparse.Namespace,
) -> dict[str, object]:
    port = free_port()
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(port, ready, proc)
        warm = iter(f"{q} (warm-up)" for q in itertools.cycle(questions))
        asyncio.run(drive(port, warm, make, args.clients, args.warmup, record=False))
        before = query_model_stats(port)
        load = asyncio.run(drive(port, iter(questions), make, args.clients, args.seconds, record=True))
        after = query_model_stats(port)
    finally:
        stop(proc)
    result = summary(load)
    if before and after and after["batches"] > before["batches"]:
        batches = after["batches"] - before["batches"]
        result["forward_passes"] = int(batches)
        result["mean_batch"] = round((after["encoded"] - before["encoded"]) / batches, 1)
    print(f"{name}: {result}", flush=True)
    return result


def query_model_stats(port: int) -> dict[str, float]:
    """The server's query-model counters from /metrics (qa only; empty for a server without them)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return {}
    stats = {}
    for line in text.splitlines():
        if line.startswith("qa_query_"):
            name, _, value = line.partition(" ")
            stats[name.removeprefix("qa_query_")] = float(value)
    return stats


def model_floor(model_path: str, questions: list[str], batch: int, seconds: float) -> dict[str, float]:
    """Questions per second of the model alone on batches of ``batch``: the most any server could do.

    Measured with one torch thread (what the server's model process uses on two cores) and with one per core.
    """
    import torch

    from qa.encoding import Embedder

    embedder = Embedder(model_path)
    out: dict[str, float] = {"batch": batch}
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        embedder.encode(questions[:batch])
        done, started = 0, time.perf_counter()
        for i in itertools.count():
            chunk = questions[(i * batch) % len(questions) :][:batch]
            embedder.encode(chunk, batch_size=batch)
            done += len(chunk)
            if time.perf_counter() - started >= seconds:
                break
        out[f"questions_per_s_{threads}_threads"] = round(done / (time.perf_counter() - started), 1)
    out["questions_per_s"] = max(v for k, v in out.items() if k.endswith("_threads"))
    return out


def build_txtai(build: Path, model_path: str, folder: Path) -> Path:
    try:
        from txtai import Embeddings
    except ImportError:
        raise SystemExit(
            "txtai is not installed: .venv/bin/pip install txtai (or pass --skip-txtai)"
        ) from None
    from qa.index.tables import STORE_FILE, Passages, Store

    embeddings = Embeddings(path=model_path, content=True, hybrid=True)
    embeddings.index([(p.id, p.text, None) for p in Passages(Store(build / STORE_FILE))])
    embeddings.save(str(folder / "index"))
    config = folder / "config.yml"
    # `path` loads the saved index; the `embeddings` section is what turns on the /search routes.
    config.write_text(
        f"path: {folder / 'index'}\nembeddings:\n  path: {model_path}\n  content: true\n  hybrid: true\n",
        encoding="utf-8",
    )
    return config


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--skip-txtai", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from qa.encoding import resolve_model
    from qa.index.build import current_path
    from qa.settings import Settings

    settings = Settings()
    subprocess.run([sys.executable, "-m", "qa.cli", "index", "--if-stale", "--quiet"], check=True, cwd=ROOT)
    build = current_path(Path(settings.index_dir)).resolve()
    model_path = resolve_model(settings.model)
    # Enough unique questions that neither system ever sees one twice (300 a second is well above the bar).
    questions = unique_questions(build, ROOT / "qa" / "data" / "vocabulary.json", int(args.seconds * 300))
    load_before = os.getloadavg()

    env = {**os.environ, "QA_RATE_LIMIT_PER_MINUTE": "0", "QA_LOG_LEVEL": "WARNING", "QA_WORKERS": "1"}
    results: dict[str, object] = {}
    qa_cmd = [sys.executable, "-m", "qa.cli", "serve", "--host", "127.0.0.1"]
    results["qa"] = run_load("qa POST /api/ask", qa_cmd, env, "/readyz", "ask", questions, args)
    results["model_floor"] = model_floor(model_path, questions, settings.batch_max, 8.0)
    print(f"model alone: {results['model_floor']}", flush=True)
    if not args.skip_txtai:
        with tempfile.TemporaryDirectory(prefix="txtai-bench-") as tmp:
            config = build_txtai(build, model_path, Path(tmp))
            txtai_cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "txtai.api:app",
                "--host",
                "127.0.0.1",
                "--workers",
                "1",
            ]
            txtai_cmd += ["--log-level", "warning", "--no-access-log"]
            results["txtai"] = run_load(
                "txtai GET /search",
                txtai_cmd,
                {**os.environ, "CONFIG": str(config)},
                "/search?query=x",
                "search",
                questions,
                args,
            )

    qa_r = results["qa"]
    assert isinstance(qa_r, dict)
    report: dict[str, object] = {
        "command": "python bench/throughput.py " + " ".join(sys.argv[1:]),
        "clients": args.clients,
        "seconds": args.seconds,
        "unique_questions": len(questions),
        "settings": {
            "batch_max": settings.batch_max,
            "batch_wait_ms": settings.batch_wait_ms,
            "torch_threads": settings.torch_threads,
            "model_process": settings.model_process,
            "workers": 1,
            "rate_limit_per_minute": 0,
        },
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        **results,
        "bar": {"throughput_per_s": 150, "p95_ms": 150, "errors": 0},
        "meets_bar": qa_r["throughput_per_s"] >= 150 and qa_r["p95_ms"] <= 150 and qa_r["errors"] == 0,
    }
    if "txtai" in results:
        tx = results["txtai"]
        assert isinstance(tx, dict)
        report["ratio_throughput_qa_over_txtai"] = round(qa_r["throughput_per_s"] / tx["throughput_per_s"], 2)
        report["ratio_p95_qa_over_txtai"] = round(qa_r["p95_ms"] / tx["p95_ms"], 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print()
    print(f"{args.clients} clients, {args.seconds:.0f} s, unique questions, loopback, {os.cpu_count()} CPUs")
    print(f"{'':28}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    rows = [("qa  POST /api/ask", qa_r)]
    if "txtai" in results:
        rows.append(("txtai GET /search (hybrid)", results["txtai"]))  # type: ignore[arg-type]
    for label, r in rows:
        print(
            f"{label:28}{r['throughput_per_s']:>8}{r['p50_ms']:>9}{r['p95_ms']:>9}{r['p99_ms']:>9}{r['errors']:>8}"
        )
    floor = results["model_floor"]
    assert isinstance(floor, dict)
    print(f"{'model alone, batches of ' + str(floor['batch']):28}{floor['questions_per_s']:>8}")
    if "ratio_throughput_qa_over_txtai" in report:
        print(
            f"qa / txtai: throughput x{report['ratio_throughput_qa_over_txtai']}, p95 x{report['ratio_p95_qa_over_txtai']}"
        )
    print(
        f"bar (>= 150/s, p95 <= 150 ms, 0 errors): {'met' if report['meets_bar'] else 'NOT met'}; {RESULTS}"
    )


if __name__ == "__main__":
    main()
