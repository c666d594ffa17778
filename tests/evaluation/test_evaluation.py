"""Evaluation: the metrics, the dev-question bars on the real index, SciFact end to end, NFCorpus's graded
judgments, the round-2 scorer in process, `qa eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED
from fastapi.testclient import TestClient

from qa.cli import main
from qa.encoding import Embedder
from qa.errors import QAError
from qa.evaluation import (
    evaluate_beir,
    evaluate_questions,
    evaluate_round2,
    first_hit_rank,
    load_beir,
    load_questions,
    ndcg_at,
    normalize_space,
    rank_metrics,
    recall_at,
)
from qa.services import Services
from qa.settings import Settings

DEV = SHARED / "eval" / "retrieval_dev.jsonl"
SCIFACT = SHARED / "benchmarks" / "scifact"
NFCORPUS = SHARED / "benchmarks" / "nfcorpus"
ROUND2 = SHARED / "eval" / "round2"


def test_rank_metrics_and_evidence_matching() -> None:
    assert first_hit_rank(["no", "the  PD-1\nantibody pembrolizumab"], ["PD-1 antibody  pembrolizumab"]) == 2
    assert first_hit_rank(["no"], ["yes"]) is None
    assert rank_metrics([1, 2, None, 11]) == pytest.approx({"hit@1": 0.25, "hit@5": 0.5, "mrr@10": 0.375})


def test_ndcg_and_recall() -> None:
    assert ndcg_at(["a", "b"], {"a"}) == 1.0
    assert ndcg_at(["x", "a"], {"a"}) == pytest.approx(1 / 1.5849625)
    assert ndcg_at(["x"], {"a"}) == 0.0
    assert recall_at(["a", "x", "b"], {"a", "b", "c", "d"}, 2) == 0.25


def test_graded_ndcg_uses_the_grades_as_gains() -> None:
    gains = {"a": 2, "b": 1}
    # DCG 1/log2(2) + 2/log2(3); ideal DCG from the grades sorted: 2/log2(2) + 1/log2(3)
    expected = (1 + 2 / 1.5849625) / (2 + 1 / 1.5849625)
    assert ndcg_at(["b", "a", "x"], {"a", "b"}, gains=gains) == pytest.approx(expected)
    assert ndcg_at(["a", "b"], {"a", "b"}, gains=gains) == 1.0
    assert ndcg_at(["b", "a", "x"], {"a", "b"}, gains={"a": 1, "b": 1}) == ndcg_at(
        ["b", "a", "x"], {"a", "b"}
    )
    assert ndcg_at(["a"], {"a", "b"}, 1, gains=gains) == 1.0  # the cut applies to the ideal ranking too


def test_nfcorpus_is_graded_and_refuses_a_train_split(embedder: Embedder, tmp_path: Path) -> None:
    data = load_beir(NFCORPUS)
    assert data.graded and len(data.test) == 323
    assert {q: set(g) for q, g in data.gains.items()} == data.test
    assert not data.train  # its queries.jsonl metadata is {"url": ...}: no cited documents
    with pytest.raises(QAError, match="no train split"):
        evaluate_beir(embedder, NFCORPUS, cache_dir=tmp_path, split="train")
    assert not load_beir(SCIFACT).graded


def test_dev_questions_meet_the_bars(services: Services) -> None:
    result = evaluate_questions(services.retriever, load_questions(DEV))
    hybrid = result["hybrid"]
    assert hybrid["hit@1"] >= 0.9, hybrid["ranks"]
    assert hybrid["hit@5"] == 1.0, hybrid["ranks"]
    assert set(result) == {"hybrid", "dense", "bm25"}


def test_scifact_splits_keep_test_judgments_apart() -> None:
    data = load_beir(SCIFACT)
    assert len(data.doc_ids) == 5183
    assert len(data.test) == 300 and sum(len(d) for d in data.test.values()) == 339
    assert data.train and not set(data.train) & set(data.test)


def test_scifact_subset_runs_end_to_end_and_caches_embeddings(embedder: Embedder, tmp_path: Path) -> None:
    first = evaluate_beir(embedder, SCIFACT, cache_dir=tmp_path, limit=8)
    assert first.queries == 8 and 8 <= first.documents < 200
    assert set(first.metrics) == {"hybrid", "dense", "bm25"}
    for values in first.metrics.values():
        assert 0.0 <= values["ndcg@10"] <= 1.0 and 0.0 <= values["recall@100"] <= 1.0
    assert first.metrics["hybrid"]["ndcg@10"] > 0.5
    again = evaluate_beir(embedder, SCIFACT, cache_dir=tmp_path, limit=8)
    assert again.cached and not first.cached
    assert again.metrics == first.metrics


def test_round2_scorer_runs_in_process_on_a_few_questions(client: TestClient, tmp_path: Path) -> None:
    for name in ("retrieval_000.jsonl", "trials_000.jsonl", "abstain.jsonl"):
        first = (ROUND2 / name).read_text(encoding="utf-8").splitlines()[0]
        (tmp_path / name).write_text(first + "\n", encoding="utf-8")
    abstain_kind = json.loads((tmp_path / "abstain.jsonl").read_text())["kind"]
    result = evaluate_round2(client, tmp_path)
    assert [i["set"] for i in result["items"]] == ["retrieval", "trials", "abstain"]
    figures = {(f["kind"], f["figure"]): f for f in result["figures"]}
    for kind in ("retrieval (all)", "trial lists", f"unanswerable {abstain_kind}"):
        assert any(k == kind for k, _ in figures), (kind, sorted(figures))
    for f in result["figures"]:
        assert 0.0 <= f["value"] <= 1.0 and f["n"] >= 1, f
    assert figures[("retrieval (all)", "hit@1")]["n"] == 1
    # the same scorer over a plain callable (no drugs: trial entries then match by ids and names only)
    again = evaluate_round2(lambda body: client.post("/api/ask", json=body).json(), tmp_path)
    assert [f["kind"] for f in again["figures"]] == [f["kind"] for f in result["figures"]]


def test_qa_eval_command_prints_json(
    settings: Settings, built_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["eval", "--questions", str(DEV), "--json"]
        + ["--index-dir", str(settings.index_dir), "--corpus-dir", str(settings.corpus_dir)]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["questions"]["hybrid"]["hit@5"] == 1.0


def test_qa_eval_without_inputs_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval"]) == 1
    assert "--questions" in capsys.readouterr().err
    assert main(["eval", "--url", "http://127.0.0.1:9"]) == 1
    assert "--round2" in capsys.readouterr().err


PAPER_QUESTIONS = Path(__file__).parents[1] / "data" / "paper_questions.jsonl"
# written by another session from the papers' bodies, blind to the ranking (a check on the abstract prior)
PAPER_QUESTIONS_HELDOUT = Path(__file__).parents[1] / "data" / "paper_questions_heldout.jsonl"
PAPERS = SHARED / "papers"


def test_qa_eval_papers_searches_each_question_within_its_document(
    settings: Settings, services: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the dev questions, each given the document that holds its evidence
    rows = []
    for q in load_questions(DEV):
        holder = next(d.id for d in services.index.documents.values() if q.evidence[0] in d.text)
        rows.append({"document": holder, "question": q.question, "evidence": q.evidence})
    papers = tmp_path / "papers.jsonl"
    papers.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    where = ["--index-dir", str(settings.index_dir), "--corpus-dir", str(settings.corpus_dir)]
    assert main(["eval", "--papers", str(papers), "--json", *where]) == 0
    out = json.loads(capsys.readouterr().out)["papers"]
    assert set(out) == {"hybrid", "dense", "bm25", "hybrid+vocab", "hybrid, all documents", "POST /api/ask"}
    assert out["POST /api/ask"]["hit@5"] >= 0.9
    assert len(out["hybrid"]["ranks"]) == len(rows)
    assert out["hybrid"]["hit@5"] >= out["hybrid, all documents"]["hit@5"] >= 0.9
    papers.write_text(json.dumps({**rows[0], "document": "not-indexed"}) + "\n", encoding="utf-8")
    assert main(["eval", "--papers", str(papers), *where]) == 1
    assert "unknown document id 'not-indexed'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("path", [PAPER_QUESTIONS, PAPER_QUESTIONS_HELDOUT], ids=["own", "held-out"])
def test_paper_questions_quote_the_papers_as_the_readers_give_them(path: Path) -> None:
    """Every evidence string of the paper question sets is in its paper's text as read (whitespace
    normalised, as ``qa eval`` compares it)."""
    from qa.corpus import load_document

    questions = load_questions(path)
    by_doc: dict[str, list[str]] = {}
    for q in questions:
        assert q.document and q.evidence, q
        by_doc.setdefault(q.document, []).extend(q.evidence)
    assert len(by_doc) == 9 and all(3 <= sum(q.document == d for q in questions) <= 5 for d in by_doc)
    files = {p.stem: p for p in PAPERS.iterdir() if p.suffix in (".xml", ".pdf")}
    for doc_id, evidence in by_doc.items():
        text = normalize_space(load_document(files[doc_id], PAPERS, None, 50_000_000).text)
        missing = [e for e in evidence if normalize_space(e) not in text]
        assert not missing, (doc_id, missing)
