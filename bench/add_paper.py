"""Adding a paper to a running server under load: seconds until it is searchable, failed requests, vectors embedded.

Copies the repository's corpus to a temporary folder, builds its index, starts `qa serve` (uvicorn, one
worker, rate limit off, an API key) and keeps 16 client threads asking POST /api/ask. Then, five times: a
paper from ../shared/papers is uploaded (POST /api/documents) while a poller lists GET /api/documents; the
time from the upload's first byte to the paper being listed (then served by search) is "seconds to
searchable". Each paper is removed (DELETE) before the next one is added. Every non-200 answer and every
transport error of the askers counts as a failed request. Writes bench/results/add_paper.json.

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/add_paper.py [--clients 16] [--adds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import free_port, stop, wait_ready  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "add_paper.json"
KEY = "bench-add-paper-key-0123456789abcdef"
QUESTIONS = [
    "Which immune checkpoint inhibitors are discussed?",
    "How do nanoparticles overcome resistance to immunotherapy?",
    "What limits the response to PD-1 blockade?",
    "Which cells of the tumour microenvironment suppress immunity?",
    "What adverse events were reported?",
    "How can cold tumours be made hot?",
    "What is the role of dendritic cells in anti-tumour immunity?",
    "Which combinations with chemotherapy were tested?",
]


def papers_folder() -> Path:
    for candidate in (ROOT.parent / "shared" / "papers", ROOT.parent.parent / "shared" / "papers"):
        if candidate.is_dir():
            return candidate
    raise SystemExit("../shared/papers is missing")


class Askers:
    """Client threads asking in a loop; statuses, failures and latencies kept."""

    def __init__(self, url: str, n: int) -> None:
        self.url, self.stop = url, threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as http:
            n = 0
            while not self.stop.is_set():
                question = f"{QUESTIONS[(i + n) % len(QUESTIONS)]} ({i}-{n})"  # distinct: no cached vector
                n += 1
                started = time.perf_counter()
                try:
                    response = http.post("/api/ask", json={"question": question})
                    failure = (
                        None
                        if response.status_code == 200
                        else f"{response.status_code} {response.text[:200]}"
                    )
                except httpx.HTTPError as exc:
                    failure = repr(exc)
                with self._lock:
                    if failure is None:
                        self.ok += 1
                        self.latencies.append(time.perf_counter() - started)
                    else:
                        self.failures.append(failure)

    def __enter__(self) -> Askers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=180)


def add_one(url: str, paper: Path) -> dict[str, object]:
    doc_id = paper.stem
    listed: list[float] = []
    done = threading.Event()
    started = time.perf_counter()

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not done.is_set() and not listed:
                try:
                    if any(d["id"] == doc_id for d in http.get("/api/documents").json()):
                        listed.append(time.perf_counter() - started)
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    response = httpx.post(
        f"{url}/api/documents",
        files={"file": (paper.name, paper.read_bytes())},
        headers={"X-API-Key": KEY},
        timeout=900,
    )
    returned = time.perf_counter() - started
    done.set()
    poller.join(timeout=10)
    body = response.json()
    if response.status_code != 201:
        return {"paper": paper.name, "status": response.status_code, "error": body}
    hits = httpx.get(f"{url}/api/search", params={"q": body["title"] or doc_id, "k": 3}, timeout=60).json()
    removed_at = time.perf_counter()
    removed = httpx.delete(f"{url}/api/documents/{doc_id}", headers={"X-API-Key": KEY}, timeout=900)
    return {
        "paper": paper.name,
        "status": response.status_code,
        "seconds_to_searchable": round(min(listed[0] if listed else returned, returned), 2),
        "seconds_to_response": round(returned, 2),
        "build_seconds": body["change"]["seconds"],
        "stage_seconds": body["change"].get("stage_seconds", {}),
        "passages_of_paper": body["passages"],
        "passages_embedded": body["change"]["passages_embedded"],
        "sentences_embedded": body["change"]["sentences_embedded"],
        "passages_in_index": body["change"]["passages"],
        "found_by_search": any(h["doc_id"] == doc_id for h in hits["passages"]),
        "remove_status": removed.status_code,
        "remove_seconds": round(time.perf_counter() - removed_at, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--adds", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"where to write the results (default {RESULTS})"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (QA_WORKERS)")
    args = parser.parse_args()
    papers = sorted(
        (p for p in papers_folder().iterdir() if p.suffix in (".xml", ".pdf")), key=lambda p: p.stat().st_size
    )[: args.adds]
    with tempfile.TemporaryDirectory(prefix="qa-add-bench-") as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
        shutil.copytree(ROOT / "corpus", corpus)
        env = {
            **os.environ,
            "QA_CORPUS_DIR": str(corpus),
            "QA_INDEX_DIR": str(index),
            "QA_API_KEY": KEY,
            "QA_RATE_LIMIT_PER_MINUTE": "0",
            "QA_LOG_LEVEL": "WARNING",
            "QA_WORKERS": str(args.workers),
            "HF_HUB_OFFLINE": "1",
        }
        subprocess.run([sys.executable, "-m", "qa.cli", "index", "--quiet"], check=True, cwd=ROOT, env=env)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        adds: list[dict[str, object]] = []
        try:
            wait_ready(port, "/readyz", proc)
            with Askers(url, args.clients) as askers:
                time.sleep(5)  # the askers running before the first add
                for paper in papers:
                    adds.append(add_one(url, paper))
                    print(json.dumps(adds[-1]), flush=True)
                time.sleep(2)
        finally:
            stop(proc)
    timed = [float(a["seconds_to_searchable"]) for a in adds if "seconds_to_searchable" in a]  # type: ignore[arg-type]
    result = {
        "command": "PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python bench/add_paper.py "
        f"--clients {args.clients} --adds {args.adds}"
        + (f" --workers {args.workers}" if args.workers > 1 else ""),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "clients": args.clients,
        "workers": args.workers,
        "p50_seconds_to_searchable": round(statistics.median(timed), 2) if timed else None,
        "max_seconds_to_searchable": max(timed) if timed else None,
        "failed_requests": len(askers.failures),
        "failures": askers.failures[:20],
        "answered_requests": askers.ok,
        "ask_p50_seconds": round(statistics.median(askers.latencies), 3) if askers.latencies else None,
        "only_new_passages_embedded": all(
            a.get("passages_embedded", -1) <= a.get("passages_of_paper", 0)
            for a in adds  # type: ignore[operator]
        ),
        "adds": adds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("adds", "failures")}, indent=2))


if __name__ == "__main__":
    main()
