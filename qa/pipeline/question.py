"""What the pipeline accepts as a question: white space folded, no control characters, bounded length."""

from __future__ import annotations

from qa.errors import BadInput
from qa.settings import MAX_QUESTION_CHARS
from qa.text_rules import has_control_chars

MAX_TOP_K = 20


def clean_question(question: str, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The question with white space folded; BadInput when empty, too long or holding control characters."""
    if not isinstance(question, str):
        raise BadInput("question must be a string")
    text = " ".join(question.split())  # tab, newline and carriage return become spaces first
    if has_control_chars(text):
        raise BadInput("question contains control characters")
    if not text:
        raise BadInput("question is empty")
    if len(text) > max_chars:
        raise BadInput(f"question is longer than {max_chars} characters")
    return text


def check_top_k(top_k: int) -> int:
    if not 1 <= top_k <= MAX_TOP_K:
        raise BadInput(f"top_k must be between 1 and {MAX_TOP_K}")
    return top_k
