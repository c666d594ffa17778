"""The `qa eval` command: dev questions, BEIR SciFact and NFCorpus, round-2 questions over the API."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.errors import QAError
from qa.evaluation.beir import evaluate_beir
from qa.evaluation.retrieval import (
    DevQuestion,
    evaluate_questions,
    first_hit_rank,
    load_questions,
    rank_metrics,
)
from qa.evaluation.round2 import evaluate_round2
from qa.evaluation.round2_report import failure_lines, table

if TYPE_CHECKING:
    from qa.encoding import Embedder
    from qa.services import Services
    from qa.settings import Settings


def run_evaluation(
    settings: Settings,
    *,
    questions: Path | None = None,
    scifact: Path | None = None,
    nfcorpus: Path | None = None,
    round2: Path | None = None,
    papers: Path | None = None,
    url: str | None = None,
    split: str = "test",
    limit: int | None = None,
) -> dict[str, Any]:
    """What `qa eval` reports: the dev questions on the served index, BEIR SciFact and/or NFCorpus in memory,
    the paper questions each searched within its document, and the round-2 questions through POST /api/ask
    (the app on the served index under TestClient, or the server at ``url``)."""
    if not (questions or scifact or nfcorpus or round2 or papers):
        raise QAError(
            "give --questions FILE, --papers FILE, --scifact DIR, --nfcorpus DIR and/or --round2 DIR"
        )
    if url and not round2:
        raise QAError("--url scores the round-2 questions: give --round2 DIR too")
    result: dict[str, Any] = {}
    services: Services | None = None
    try:
        if questions or papers or (round2 and not url):
            from qa.services import Services

            services = Services.start(settings)
        if questions and services is not None:
            expand = services.facts.expand_query if services.facts is not None else None
            result["questions"] = evaluate_questions(
                services.retriever, load_questions(questions), expand=expand
            )
        if papers and services is not None:
            result["papers"] = _papers(services, papers)
        embedder: Embedder | None = services.embedder if services is not None else None
        for name, folder in (("scifact", scifact), ("nfcorpus", nfcorpus)):
            if folder:
                if embedder is None:
                    from qa.encoding import Embedder

                    embedder = Embedder(settings.model, threads=settings.torch_threads)
                report = evaluate_beir(
                    embedder,
                    folder,
                    cache_dir=Path(settings.index_dir) / "cache",
                    split=split,
                    limit=limit,
                    retriever_options=settings.retrieval,
                )
                result[name] = asdict(report)
        if round2:
            result["round2"] = _round2(round2, url, services)
    finally:
        if services is not None:
            services.close()
    return result


def _papers(services: Services, path: Path) -> dict[str, Any]:
    """The paper questions, each within its document (every one must name an indexed document)."""
    asked = load_questions(path)
    missing = [q.id for q in asked if not q.document]
    if missing:
        raise QAError(f"{path}: questions without a document: {', '.join(missing[:5])}")
    try:
        services.index.check_documents(q.document for q in asked if q.document)
    except QAError as exc:
        raise QAError(f"{path}: {exc.message} (index the papers first: qa index --corpus DIR)") from exc
    expand = services.facts.expand_query if services.facts is not None else None
    out = evaluate_questions(services.retriever, asked, expand=expand, unfiltered=True)
    out[ASK_ROW] = _asked(services, asked)
    return out


ASK_ROW = "POST /api/ask"  # the passages an answer lists (top 5), as a client gets them


def _asked(services: Services, asked: list[DevQuestion]) -> dict[str, Any]:
    """Each paper question through the whole question path (trials, priors, answer), its document as the
    filter; ranks over the first five passages the answer lists. No conversation is recorded."""
    from qa.pipeline.runner import STAGES, ask, run_blocking

    stages = tuple(s for s in STAGES if s.name != "record")

    async def run() -> dict[str, int | None]:
        ranks = {}
        for q in asked:
            documents = [q.document] if q.document else None  # every paper question has one (checked)
            result = await ask(services, q.question, documents=documents, top_k=5, stages=stages)
            ranks[q.id] = first_hit_rank((h.passage.text for h in result.hits[:5]), q.evidence)
        return ranks

    ranks = run_blocking(run)  # (also from a notebook, whose kernel runs an event loop)
    return {**rank_metrics(list(ranks.values())), "ranks": ranks}


def _round2(data: Path, url: str | None, services: Services | None) -> dict[str, Any]:
    import httpx

    if url:
        with httpx.Client(base_url=url, timeout=60.0) as client:
            return {"target": url, **evaluate_round2(client, data)}
    from fastapi.testclient import TestClient

    from qa.api.app import create_app

    with TestClient(create_app(services=services)) as client:
        return {"target": "in-process", **evaluate_round2(client, data)}


def format_report(result: dict[str, Any], *, failures: bool = False) -> str:
    blocks: list[list[str]] = []
    for key, title in (("questions", "dev questions"), ("papers", "paper questions, within their document")):
        if key in result:
            blocks.append(_rank_lines(title, result[key]))
    for name, title in (("scifact", "SciFact"), ("nfcorpus", "NFCorpus")):
        if name in result:
            blocks.append(_beir_lines(title, result[name]))
    if "round2" in result:
        r = result["round2"]
        rows = [(f["kind"], f["figure"], f["value"], f["n"]) for f in r["figures"]]
        lines = [f"round-2 questions ({len(r['items'])}, {r['target']}, {r['seconds']:.1f}s)", table(rows)]
        if failures:
            lines += failure_lines(r["items"])
        blocks.append(lines)
    return "\n\n".join("\n".join(b) for b in blocks)


def _rank_lines(title: str, q: dict[str, Any]) -> list[str]:
    width = max(len(m) for m in q) + 1
    lines = [f"{title} ({len(q['hybrid']['ranks'])})", f"{'mode':<{width}} hit@1  hit@5  MRR@10"]
    lines += [f"{m:<{width}} {q[m]['hit@1']:.3f}  {q[m]['hit@5']:.3f}  {q[m]['mrr@10']:.3f}" for m in q]
    missed = [i for i, r in q["hybrid"]["ranks"].items() if r != 1]
    if missed:
        lines.append("hybrid not at rank 1: " + ", ".join(f"{i} ({q['hybrid']['ranks'][i]})" for i in missed))
    return lines


def _beir_lines(title: str, s: dict[str, Any]) -> list[str]:
    how = "cached" if s["cached"] else "computed"
    graded = s.get("graded")
    lines = [
        f"{title} {s['split']}: {s['queries']} queries, {s['documents']} documents; embedding "
        f"{s['embed_seconds']:.1f}s ({how}), FAISS + BM25 index {s['index_seconds']:.1f}s",
        f"{'mode':<8} nDCG@10  recall@100" + ("  nDCG@10 (binary gain)" if graded else ""),
    ]
    for m, v in s["metrics"].items():
        extra = f"  {v['ndcg@10_binary']:.4f}" if graded else ""
        lines.append(f"{m:<8} {v['ndcg@10']:.4f}   {v['recall@100']:.4f}{extra}")
    if graded:
        lines.append("(nDCG@10 with the graded judgments as gains)")
    return lines
