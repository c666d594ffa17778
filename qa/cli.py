"""The `qa` command: index, search, serve (and more); each subcommand calls the same library functions."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from qa.errors import QAError
from qa.settings import Settings

if TYPE_CHECKING:
    from qa.services import Services

Handler = Callable[[argparse.Namespace, Settings], int]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_settings_flags(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    """One flag per setting (same names as the QA_* variables), with the setting's description as help."""
    group = parser.add_argument_group("settings (also read from QA_* environment variables)")
    for name, info in Settings.model_fields.items():
        if names is not None and name not in names:
            continue
        default = info.default if info.default_factory is None else "[]"
        group.add_argument(
            _flag(name),
            dest=f"setting_{name}",
            metavar=name.upper(),
            default=None,
            help=f"{info.description} [env QA_{name.upper()}, default {default}]",
        )


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for key, value in vars(args).items():
        if key.startswith("setting_") and value is not None:
            name = key.removeprefix("setting_")
            field = Settings.model_fields[name]
            overrides[name] = json.loads(value) if field.annotation == list[str] else value
    return Settings(**overrides)


def _services(settings: Settings, *, build: bool = False) -> Services:
    from qa.services import Services

    return Services.start(settings, build_if_needed=build)


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from qa.encoding import Embedder
    from qa.index.build import build_index, shelved_corpus
    from qa.index.store import index_differences

    if args.corpus:
        settings = settings.model_copy(update={"corpus_dir": Path(args.corpus)})
    if args.if_stale:
        diffs = index_differences(settings)
        if not diffs:
            print(f"index at {settings.index_dir} is up to date")
            return 0
        print("rebuilding: " + "; ".join(diffs))
    started = time.perf_counter()

    def load_model() -> Embedder:
        return Embedder(settings.model, threads=settings.torch_threads, precision=settings.embed_precision)

    if getattr(args, "ray", None):
        from qa.index.distributed import build_index_ray

        embedder = load_model()
        path = build_index_ray(
            settings,
            embedder,
            address=args.ray,
            actors=args.ray_actors,
            gpus=args.ray_gpus,
            progress=not args.quiet,
        )
    else:
        # the documents are read (onto a shelf on disk) before the model loads: a corpus with nothing
        # readable fails first
        with shelved_corpus(settings) as corpus:
            embedder = load_model()
            path = build_index(settings, embedder, corpus=corpus, progress=not args.quiet)
    from qa.index.manifest import IndexManifest

    m = IndexManifest.read(path)
    for message in m.extra.get("skipped", []):
        print(f"warning: skipped {message}", file=sys.stderr)
    print(
        f"indexed {m.documents} documents into {m.passages} passages ({m.sentences} sentences) "
        f"in {time.perf_counter() - started:.1f}s (build {m.build_seconds:.1f}s, model load "
        f"{embedder.load_seconds:.1f}s) -> {path}"
    )
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(settings)
    documents = services.index.check_documents(args.documents)
    hits = services.retriever.search(args.query, k=args.k, mode=args.mode, documents=documents)
    if args.json:
        print(
            json.dumps(
                [{"id": h.passage.id, "score": h.score, "dense": h.dense, "bm25": h.bm25} for h in hits]
            )
        )
        return 0
    for h in hits:
        p = h.passage
        doc = services.index.document(p.doc_id)
        print(f"{h.rank}. [{h.score:.4f}] {doc.meta.display_title} > {' > '.join(p.section)} ({p.id})")
        print("   " + p.text[:300].replace("\n", " ") + ("..." if len(p.text) > 300 else ""))
    if not hits:
        print("no passages matched")
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from qa.api.present import ask_response
    from qa.pipeline import ask, run_blocking

    services = _services(settings)
    result = run_blocking(lambda: ask(services, args.question, top_k=args.k, documents=args.documents))
    response = ask_response(services.index, result, f"http://{settings.host}:{settings.port}")
    if args.json:
        print(response.model_dump_json(indent=2))
        return 0
    print(response.answer)
    print()
    label = "Related passages" if response.abstained else "Sources"
    print(f"{label}:")
    for i, p in enumerate(response.passages, start=1):
        print(f"[{i}] {p.title} > {' > '.join(p.section)} (chars {p.start}-{p.end})")
        print(f"    {p.url}")
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa.evaluation import format_report, run_evaluation

    result = run_evaluation(
        settings,
        questions=args.questions,
        scifact=args.scifact,
        nfcorpus=args.nfcorpus,
        round2=args.round2,
        papers=args.papers,
        url=args.url,
        split=args.split,
        limit=args.limit,
    )
    print(json.dumps(result, indent=2) if args.json else format_report(result, failures=args.failures))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from qa.errors import IndexMissing
    from qa.index.store import REBUILD_HINT, index_differences

    if settings.database_url:  # a database that cannot be used is one error line, before a worker starts
        from qa.conversations import open_store

        open_store(settings).close()
    differences = index_differences(settings)
    if differences and args.build_if_needed:
        cmd_index(argparse.Namespace(corpus=None, if_stale=True, quiet=False), settings)
    elif differences:  # one error line here too, not a traceback from every worker's startup
        raise IndexMissing(
            f"cannot serve: {'; '.join(differences)}; {REBUILD_HINT} or pass --build-if-needed"
        )
    os.environ["QA_SERVE_SETTINGS"] = settings.model_dump_json()
    uvicorn.run(
        "qa.cli:serve_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level.lower(),
    )
    return 0


def serve_app() -> Any:
    """The app factory of `qa serve`, run in each server process: tune the process, then build the app.

    The tuning (FAISS and GIL settings) is process-wide, so it is applied here and not by every Services
    (a test's, a library user's)."""
    from qa.api.app import app_from_environment
    from qa.encoding.tuning import apply_serving_tuning

    app = app_from_environment()
    apply_serving_tuning(app.state.settings)
    return app


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from qa.library.cli import add

    return add(settings, [Path(p) for p in args.paths])


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from qa.library.cli import remove

    return remove(settings, args.doc_ids)


def cmd_documents(args: argparse.Namespace, settings: Settings) -> int:
    from qa.library.cli import documents_table

    return documents_table(settings, as_json=args.json)


COMMANDS: dict[str, Handler] = {
    "add": cmd_add,
    "remove": cmd_remove,
    "documents": cmd_documents,
    "index": cmd_index,
    "search": cmd_search,
    "ask": cmd_ask,
    "serve": cmd_serve,
    "eval": cmd_eval,
}


def _document_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--document",
        dest="documents",
        action="append",
        metavar="ID",
        help="only this document (its id: the file name without extension); repeat for several",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Cited answers from cancer-immunotherapy papers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build the index from a corpus folder")
    p.add_argument("--corpus", help="folder of documents to index (default: QA_CORPUS_DIR)")
    p.add_argument(
        "--if-stale", action="store_true", help="do nothing when the index matches corpus and settings"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="read, chunk and embed on Ray (pip install 'qa[ray]'): 'auto' uses the cluster at RAY_ADDRESS "
        "if set, else starts a local one; or the address of a running cluster (host:port, ray://...)",
    )
    p.add_argument(
        "--ray-actors", type=int, default=1, metavar="N", help="--ray: embedding actors, one model each"
    )
    p.add_argument(
        "--ray-gpus", type=float, default=0.0, metavar="G", help="--ray: GPUs per embedding actor (0: CPU)"
    )
    add_settings_flags(p, ["index_dir", "model", "chunk_max_tokens", "chunk_overlap_sentences", "index_type"])

    p = sub.add_parser("search", help="top passages for a query")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    _document_flag(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    add_settings_flags(p, ["index_dir", "corpus_dir", "model"])

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    _document_flag(p)
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    add_settings_flags(p, ["index_dir", "corpus_dir", "model", "abstain_threshold"])

    p = sub.add_parser("serve", help="serve the web UI and JSON API")
    p.add_argument(
        "--build-if-needed", action="store_true", help="build the index first when missing or stale"
    )
    add_settings_flags(p)

    library_flags = [
        "index_dir",
        "corpus_dir",
        "model",
        "upload_max_mb",
        "upload_max_pages",
        "change_wait_seconds",
    ]
    p = sub.add_parser("add", help="add papers (files or folders) to the index without a rebuild")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_settings_flags(p, library_flags)
    p = sub.add_parser("remove", help="remove documents from the index by id")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    add_settings_flags(p, library_flags)
    p = sub.add_parser("documents", help="the indexed documents, as a table")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_settings_flags(p, ["index_dir"])

    p = sub.add_parser(
        "eval", help="retrieval metrics (dev questions, BEIR SciFact / NFCorpus) and round-2 figures by kind"
    )
    p.add_argument("--questions", type=Path, help="question file (retrieval_dev.jsonl format)")
    p.add_argument("--scifact", type=Path, help="BEIR SciFact folder (corpus.jsonl, queries.jsonl, qrels/)")
    p.add_argument("--nfcorpus", type=Path, help="BEIR NFCorpus folder (graded qrels: graded nDCG@10)")
    p.add_argument(
        "--split",
        choices=["test", "train"],
        default="test",
        help="BEIR queries: test qrels or train claims (SciFact only)",
    )
    p.add_argument("--limit", type=int, help="BEIR: only the first N queries (and a small corpus)")
    p.add_argument(
        "--round2", type=Path, help="round-2 question folder, asked through POST /api/ask, figures by kind"
    )
    p.add_argument(
        "--papers",
        type=Path,
        help="questions about single documents ({document, question, evidence} per line), each searched "
        "within its document: hit@1/hit@5/MRR@10",
    )
    p.add_argument("--url", help="--round2: score the server at URL instead of the app in this process")
    p.add_argument("--failures", action="store_true", help="--round2: list failing questions")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_settings_flags(p, ["index_dir", "corpus_dir", "model", "fusion", "fusion_alpha", "rrf_k"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        return COMMANDS[args.command](args, settings)
    except ValidationError as exc:
        print(
            f"error: invalid setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", file=sys.stderr
        )
        return 2
    except QAError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
