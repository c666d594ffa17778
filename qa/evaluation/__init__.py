"""Evaluation: dev questions (retrieval), BEIR SciFact and NFCorpus (beir), round-2 questions over the API
(round2, trial_matching, round2_report), and the `qa eval` command that runs them (command).

The names below are re-exported so ``from qa.evaluation import ...`` keeps working."""

from qa.evaluation.beir import (
    Beir,
    BeirReport,
    MemoryIndex,
    cached_encode,
    document_passages,
    evaluate_beir,
    load_beir,
    ndcg_at,
    recall_at,
)
from qa.evaluation.command import format_report, run_evaluation
from qa.evaluation.retrieval import (
    MODES,
    DevQuestion,
    evaluate_questions,
    first_hit_rank,
    load_questions,
    normalize_space,
    rank_metrics,
)
from qa.evaluation.round2 import evaluate_round2, figures
from qa.evaluation.trial_matching import TrialMatcher, parse_expected

__all__ = [
    "MODES",
    "Beir",
    "BeirReport",
    "DevQuestion",
    "MemoryIndex",
    "TrialMatcher",
    "cached_encode",
    "document_passages",
    "evaluate_beir",
    "evaluate_questions",
    "evaluate_round2",
    "figures",
    "first_hit_rank",
    "format_report",
    "load_beir",
    "load_questions",
    "ndcg_at",
    "normalize_space",
    "parse_expected",
    "rank_metrics",
    "recall_at",
    "run_evaluation",
]
