"""Structured facts: trials, drugs, classes, targets, conditions and outcomes, each with its evidence.

The two entry points other modules use:
``FactStore.answer_trials(question)`` -> the trials a question asks about (None: not a trial question);
``expand_query(vocab, question)`` -> extra retrieval terms (class -> member drugs, code name -> INN).
"""

from qa.facts.model import DrugRecord, Evidence, FactRecords, Trial
from qa.facts.query import TrialQuery, expand_query, parse_question
from qa.facts.store import FACTS_FILE, FactStore, build_facts, facts_build_step
from qa.facts.vocab import Vocabulary

__all__ = [
    "FACTS_FILE",
    "DrugRecord",
    "Evidence",
    "FactRecords",
    "FactStore",
    "Trial",
    "TrialQuery",
    "Vocabulary",
    "build_facts",
    "expand_query",
    "facts_build_step",
    "parse_question",
]
