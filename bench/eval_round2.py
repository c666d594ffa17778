"""Round-2 evaluation over the JSON API: a thin wrapper over qa.evaluation.round2 (also `qa eval --round2`).

    python bench/eval_round2.py                          # a server already running on http://127.0.0.1:8000
    python bench/eval_round2.py --url http://127.0.0.1:8765 --failures
    python bench/eval_round2.py --in-process --index-dir /tmp/idx   # no server: the app under TestClient

Prints the figures table, writes per-question details to bench/results/eval_round2.json, and with
--failures prints every failing question with what came back. How each file is scored: see the docs of
qa/evaluation/round2.py and qa/evaluation/trial_matching.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from qa.evaluation.round2 import evaluate_round2
from qa.evaluation.round2_report import failure_lines, table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path("/work/shared/eval/round2")
if not DEFAULT_DATA.exists():
    DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "round2"
DEFAULT_OUT = ROOT / "bench" / "results" / "eval_round2.json"


@contextmanager
def in_process_client(index_dir: Path, corpus_dir: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from qa.api.app import create_app
    from qa.services import Services
    from qa.settings import Settings

    services = Services.start(Settings(corpus_dir=corpus_dir, index_dir=index_dir), build_if_needed=True)
    try:
        with TestClient(create_app(services=services)) as c:
            yield c
    finally:
        services.close()


def git_commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "qa"], cwd=ROOT, capture_output=True, text=True
        )
        return rev.strip() + (" (qa/ modified)" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="a running server (default %(default)s)")
    ap.add_argument("--in-process", action="store_true", help="build the app in this process (TestClient)")
    ap.add_argument("--index-dir", type=Path, default=ROOT / "index", help="--in-process: index folder")
    ap.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus", help="--in-process: corpus folder")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="round-2 question folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON (default %(default)s)")
    ap.add_argument("--failures", action="store_true", help="print failing questions with what came back")
    args = ap.parse_args(argv)

    if args.in_process:
        ctx = in_process_client(args.index_dir, args.corpus_dir)
    else:
        ctx = httpx.Client(base_url=args.url, timeout=60.0)
    with ctx as client:
        scored = evaluate_round2(client, args.data)
    rows = [(f["kind"], f["figure"], f["value"], f["n"]) for f in scored["figures"]]
    print(table(rows))
    if args.failures:
        print("\n".join(failure_lines(scored["items"])))
    result = {
        "commit": git_commit(),
        "target": "in-process" if args.in_process else args.url,
        **scored,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    n, seconds = len(scored["items"]), scored["seconds"]
    print(f"\n{n} questions in {seconds:.1f}s; details in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
