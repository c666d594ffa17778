"""The one question path the API, the HTML pages and the CLI share: ``await ask(services, question)``."""

from __future__ import annotations

from qa.pipeline.compose import trial_label
from qa.pipeline.context import AskContext, AskResult
from qa.pipeline.question import clean_question
from qa.pipeline.runner import STAGES, Stage, ask, run_blocking

__all__ = [
    "STAGES",
    "AskContext",
    "AskResult",
    "Stage",
    "ask",
    "clean_question",
    "run_blocking",
    "trial_label",
]
