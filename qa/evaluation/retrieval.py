"""Dev questions: hit@1, hit@5 and MRR@10 of the served index's retrieval, per mode.

A question that names a ``document`` is searched within it (the document filter of POST /api/ask); the
paper questions (tests/data/paper_questions.jsonl, ``qa eval --papers``) are all of that kind."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.errors import QAError

if TYPE_CHECKING:  # FAISS, bm25s and torch load only when an evaluation runs, not for `qa --help`
    from qa.retrieval import Retriever

MODES = ("hybrid", "dense", "bm25")


@dataclass
class DevQuestion:
    id: str
    question: str
    evidence: list[str]
    document: str | None = None  # searched within this document only


def load_questions(path: Path) -> list[DevQuestion]:
    """Questions in the retrieval_dev.jsonl format: one {id, question, evidence: [...], document?} per line
    (a question without an id is named after its document and line)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        questions = []
        for n, line in enumerate(lines, start=1):
            if line.strip():
                data = json.loads(line)
                data.setdefault("id", f"{data.get('document') or 'q'}:{n}")
                questions.append(DevQuestion(**data))
        return questions
    except (OSError, ValueError, TypeError) as exc:
        raise QAError(f"cannot read questions from {path}: {exc}") from exc


def normalize_space(text: str) -> str:
    return " ".join(text.split())


def first_hit_rank(passages: Iterable[str], evidence: list[str]) -> int | None:
    """1-based rank of the first passage containing one of the evidence strings (whitespace-normalized)."""
    wanted = [normalize_space(e) for e in evidence]
    for rank, text in enumerate(passages, start=1):
        flat = normalize_space(text)
        if any(e in flat for e in wanted):
            return rank
    return None


def rank_metrics(ranks: list[int | None]) -> dict[str, float]:
    """hit@1, hit@5 and MRR@10 over the first-hit ranks of a question set (None: not found)."""
    n = len(ranks) or 1
    return {
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n,
    }


def evaluate_questions(
    retriever: Retriever,
    questions: list[DevQuestion],
    modes: Iterable[str] = MODES,
    *,
    expand: Callable[[str], list[str]] | None = None,
    unfiltered: bool = False,
) -> dict[str, dict[str, Any]]:
    """Per mode: the metrics and each question's first-hit rank within the top 10.

    With ``expand`` (the facts vocabulary's query expansion) a row "hybrid+vocab" measures what it adds;
    with ``unfiltered`` a row "hybrid, all documents" shows what the questions' document filters add.
    """
    out: dict[str, dict[str, Any]] = {}
    vectors = retriever.encode([q.question for q in questions])
    runs: list[tuple[str, str, Callable[[str], list[str]] | None, bool]]
    runs = [(mode, mode, None, True) for mode in modes]
    runs += [("hybrid+vocab", "hybrid", expand, True)] if expand else []
    runs += [("hybrid, all documents", "hybrid", None, False)] if unfiltered else []
    for name, mode, expander, filtered in runs:
        ranks = {}
        for q, v in zip(questions, vectors, strict=True):
            extra = expander(q.question) if expander else None
            documents = [q.document] if filtered and q.document else None
            hits = retriever.search(
                q.question, 10, mode=mode, query_vector=v, expansions=extra, documents=documents
            )
            ranks[q.id] = first_hit_rank((h.passage.text for h in hits), q.evidence)
        out[name] = {**rank_metrics(list(ranks.values())), "ranks": ranks}
    return out
