"""Pronoun substitution of a follow-up: each kind of reference is replaced once, by the previous turn's phrase."""

from __future__ import annotations

import pytest

from qa.followup.moves import substitute

PHRASE = "the trials of TLR9 agonists"


@pytest.mark.parametrize(
    ("follow_up", "resolved"),
    [
        ("Which of those were phase 3?", "Which trials of TLR9 agonists were phase 3?"),
        ("Were any of them in melanoma?", "Were any of the trials of TLR9 agonists in melanoma?"),
        (
            "What were their response rates in melanoma?",
            "What were the response rates of the trials of TLR9 agonists in melanoma?",
        ),
        ("What is its mechanism?", "What is the mechanism of the trials of TLR9 agonists?"),
        ("Did they improve survival?", "Did the trials of TLR9 agonists improve survival?"),
        ("Tell me about nivolumab.", "Tell me about nivolumab."),
    ],
)
def test_each_kind_of_reference_becomes_the_phrase(follow_up: str, resolved: str) -> None:
    assert substitute(follow_up, PHRASE) == resolved


def test_a_which_reference_and_a_bare_pronoun_are_both_replaced_once() -> None:
    text = "Which ones of these trials reached phase 3 and did they report toxicity? Did they?"
    out = substitute(text, PHRASE)
    assert out.startswith(
        "Which trials of TLR9 agonists reached phase 3 and did the trials of TLR9 agonists report"
    )
    assert out.endswith("Did they?")  # each rule replaces its first match only
