"""Retrieval evaluation: the metrics, the dev-question bars on the real index, SciFact end to end, `qa eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED

from qa.cli import main
from qa.encoding import Embedder
from qa.evaluation import (
    evaluate_beir,
    evaluate_questions,
    first_hit_rank,
    load_beir,
    load_questions,
    ndcg_at,
    rank_metrics,
    recall_at,
)
from qa.services import Services
from qa.settings import Settings

DEV = SHARED / "eval" / "retrieval_dev.jsonl"
SCIFACT = SHARED / "benchmarks" / "scifact"


def test_rank_metrics_and_evidence_matching() -> None:
    assert first_hit_rank(["no", "the  PD-1\nantibody pembrolizumab"], ["PD-1 antibody  pembrolizumab"]) == 2
    assert first_hit_rank(["no"], ["yes"]) is None
    assert rank_metrics([1, 2, None, 11]) == pytest.approx({"hit@1": 0.25, "hit@5": 0.5, "mrr@10": 0.375})


def test_ndcg_and_recall() -> None:
    assert ndcg_at(["a", "b"], {"a"}) == 1.0
    assert ndcg_at(["x", "a"], {"a"}) == pytest.approx(1 / 1.5849625)
    assert ndcg_at(["x"], {"a"}) == 0.0
    assert recall_at(["a", "x", "b"], {"a", "b", "c", "d"}, 2) == 0.25


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
