"""Latency of POST /api/ask over HTTP, one client at a time, against the model's own single-query forward pass.

Usage: .venv/bin/python bench/ask_latency.py [--questions 200] [--port PORT] [--block 25]

Starts `qa serve` on 127.0.0.1 (building the index first when stale) and loads the same model in this
process. For each block of unique questions: POST /api/ask over HTTP for each, one at a time, then the bare
forward pass on the same texts (tokenize, model, normalize, every core), then SentenceTransformer.encode;
so both sides meet the same text lengths and the same stretches of a shared machine. Prints p50/p95 and
the ratio of the ask p50 to the bare forward pass p50; writes bench/results/ask_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = [
    "What is known about {}?",
    "Which trials evaluate {}?",
    "How does {} affect the tumor microenvironment?",
    "What results were reported for {}?",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def unique_questions(n: int) -> list[str]:
    """Questions built from identifiers and terms that occur in the corpus (no two alike)."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus").glob("*.txt")))
    terms = list(
        dict.fromkeys(
            re.findall(
                r"\b(?:[A-Z][A-Za-z0-9]*-?\d+[A-Za-z]*|[A-Z]{3,}[a-z]?s?|[a-z]{6,}(?:mab|nib|cel))\b", text
            )
        )
    )
    out = [t.format(term) for term in terms for t in TEMPLATES]
    return list(dict.fromkeys(out))[:n]


def _time_one(encode: Callable[[list[str]], object], question: str) -> float:
    started = time.perf_counter()
    encode([question])
    return (time.perf_counter() - started) * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--block", type=int, default=25, help="questions per block of each side")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    questions = unique_questions(args.questions + args.warmup)
    warm, questions = questions[: args.warmup], questions[args.warmup :]
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    qa = [sys.executable, "-m", "qa.cli"]
    subprocess.run([*qa, "index", "--if-stale", "--quiet"], check=True, cwd=ROOT)
    server = subprocess.Popen(
        [*qa, "serve", "--port", str(port), "--log-level", "WARNING"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from qa.encoding import Embedder
    from qa.encoding.forward import direct_encoder

    embedder = Embedder("all-MiniLM-L6-v2")
    # The bare forward pass (tokenize, model, normalize; every core) is the floor; SentenceTransformer.encode
    # adds a few ms of bookkeeping per call. The ratio is taken against the stricter of the two.
    bare = direct_encoder(embedder)
    http_ms: list[float] = []
    model_ms: list[float] = []
    st_encode_ms: list[float] = []
    errors = 0
    try:
        wait_ready(base, server)
        time.sleep(1.0)
        if server.poll() is not None:  # someone else answered on that port
            raise SystemExit(f"our server exited ({server.returncode}); is port {port} taken?")
        with httpx.Client(base_url=base, timeout=30) as client:
            for q in warm:
                client.post("/api/ask", json={"question": q})
                bare([q])
                embedder.encode([q])
            # Interleaved in blocks: a block of questions over HTTP, back to back, then the same questions
            # through the bare model, then through SentenceTransformer.encode. Both sides meet the same
            # texts, run warm (a model left idle for tens of ms runs markedly slower on this VM), and
            # share the same stretches of a shared machine.
            for start in range(0, len(questions), args.block):
                block = questions[start : start + args.block]
                for q in block:
                    started = time.perf_counter()
                    r = client.post("/api/ask", json={"question": q})
                    http_ms.append((time.perf_counter() - started) * 1000)
                    errors += r.status_code != 200
                model_ms.extend(_time_one(bare, q) for q in block)
                st_encode_ms.extend(_time_one(embedder.encode, q) for q in block)
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "questions": len(questions),
        "errors": errors,
        "http_ask_ms": {"p50": statistics.median(http_ms), "p95": pct(http_ms, 95)},
        "model_forward_ms": {"p50": statistics.median(model_ms), "p95": pct(model_ms, 95)},
        "sentence_transformers_encode_ms": {
            "p50": statistics.median(st_encode_ms),
            "p95": pct(st_encode_ms, 95),
        },
        "ratio_p50": statistics.median(http_ms) / statistics.median(model_ms),
        "load_average": os.getloadavg(),
    }
    out = ROOT / "bench" / "results" / "ask_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{'':24}{'p50 ms':>10}{'p95 ms':>10}")
    print(
        f"{'POST /api/ask (HTTP)':24}{result['http_ask_ms']['p50']:>10.1f}{result['http_ask_ms']['p95']:>10.1f}"
    )
    print(
        f"{'model forward pass':24}{result['model_forward_ms']['p50']:>10.1f}{result['model_forward_ms']['p95']:>10.1f}"
    )
    st = result["sentence_transformers_encode_ms"]
    print(f"{'SentenceTransformer.encode':24}{st['p50']:>10.1f}{st['p95']:>10.1f}")
    print(
        f"ratio (p50 ask / p50 model): {result['ratio_p50']:.2f}   "
        f"errors: {errors}   questions: {len(questions)}"
    )


if __name__ == "__main__":
    main()
