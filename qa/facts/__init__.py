"""Structured facts: trials, drugs, classes, targets, conditions and outcomes, each with its evidence.

The two entry points other modules use:
``FactStore.answer_trials(question)`` -> the trials a question asks about (None: not a trial question);
``expand_query(vocab, question)`` -> extra retrieval terms (class -> member drugs, code name -> INN).
"""

from qa.facts.model import DrugRecord, Evidence, Trial
from qa.facts.query import (
    TrialCatalog,
    TrialQuery,
    answer_trials,
    expand_query,
    filter_trials,
    parse_question,
)
from qa.facts.store import FACTS_FILE, FactStore, build_facts, facts_build_step
from qa.facts.vocab import Vocabulary

__all__ = [
    "FACTS_FILE",
    "DrugRecord",
    "Evidence",
    "FactStore",
    "Trial",
    "TrialCatalog",
    "TrialQuery",
    "Vocabulary",
    "answer_trials",
    "build_facts",
    "expand_query",
    "facts_build_step",
    "filter_trials",
    "parse_question",
]
