"""What kind of answer a question asks for, read from its shape, and whether a sentence holds one.

Kinds: value (a figure: a rate, a survival time, a dose, a count, an identifier), date, list, yesno,
definition, mechanism, other. A value question also says which figure it wants (``Asked``), so a sentence
can be checked for a number of the right unit near the named measure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("value", "date", "list", "yesno", "definition", "mechanism", "other")

_YESNO = re.compile(r"^\s*(?:is|are|was|were|does|do|did|has|have|had|can|could|will|would|should)\b", re.I)
_DEFINITION = re.compile(
    r"^\s*(?:what|who)\s+(?:is|are|was|were)\s+(?:an?\s+|the\s+)?(?P<x>[^?]+?)\s*\??\s*$", re.I
)
_DATE = re.compile(r"^\s*when\b|\b(?:what|which)\s+year\b|\bin\s+which\s+year\b", re.I)
_MECHANISM = re.compile(r"^\s*(?:why|how)\b(?!\s+(?:many|much|long|often|large|high|big))", re.I)
_LIST = re.compile(r"^\s*(?:which|list|name|what)\b", re.I)


@dataclass(frozen=True)
class Measure:
    """A figure a question can ask for: the words that ask for it, what a sentence must say, its unit."""

    name: str
    asks: re.Pattern[str]  # in the question
    says: re.Pattern[str] | None  # in the sentence (the measure itself); None: the unit is enough
    unit: re.Pattern[str]  # in the sentence


_PERCENT = re.compile(r"\d+(?:\.\d+)?\s*%|\(\d+/\d+\)")
_DURATION = re.compile(
    r"\d+(?:\.\d+)?\s*(?:months?|weeks?|years?|days?|hours?|h)\b|\b(?:day|week|month|year)\s+\d+\b"
    r"|\bHR\b[^.]{0,12}\d|hazard ratio[^.]{0,20}\d",
    re.I,
)
_ANY_NUMBER = re.compile(r"\d")
# A count: a number standing alone, not part of an identifier (NCT03829319, IL-2, CD8), a phase, stage or
# grade, or a bracketed citation ("(104)").
_COUNT = re.compile(r"(?<![\w./\-+(])(?<!phase )(?<!stage )(?<!grade )\d[\d,]*(?:\.\d+)?(?![\w./\-+)])", re.I)
# Most specific first: "overall response rate" asks for a rate, "overall survival" for a survival.
MEASURES = (
    Measure(
        "NCT number",
        re.compile(r"\bNCT\b|\b(?:registry|registration|trial)\s+(?:number|id|identifier)\b", re.I),
        None,
        re.compile(r"NCT\s?\d{8}", re.I),
    ),
    Measure(
        "response rate",
        re.compile(
            r"\b(?:ORR|DCR|CRR|response rates?|remission rates?|control rates?|(?:complete|partial|objective) (?:response|remission)s?)\b",
            re.I,
        ),
        re.compile(r"\b(?:ORR|DCR|CR|PR|pCR|respon\w*|remission\w*|control rate)\b", re.I),
        _PERCENT,
    ),
    Measure(
        "progression-free survival",
        re.compile(r"\b(?:m?PFS|progression[- ]free(?: survival)?|event[- ]free survival|EFS)\b", re.I),
        re.compile(r"\b(?:m?PFS|progression[- ]free|EFS|event[- ]free)\b", re.I),
        _DURATION,
    ),
    Measure(
        "overall survival",
        re.compile(r"\b(?:m?OS|overall survival|survival)\b", re.I),
        re.compile(r"\b(?:m?OS|survival|surviv\w*)\b", re.I),
        re.compile(_DURATION.pattern + r"|" + _PERCENT.pattern, re.I),
    ),
    Measure(
        "half-life",
        re.compile(r"\bhalf[- ]li(?:fe|ves)\b", re.I),
        re.compile(r"\bhalf[- ]li(?:fe|ves)\b", re.I),
        _DURATION,
    ),
    Measure(
        "dose",
        re.compile(r"\b(?:dose|dosage|doses|dosing)\b", re.I),
        None,
        re.compile(r"\d\s*(?:mg|µg|μg|ug|g|mL|Gy|IU|units?)\b|\d\s*×\s*10", re.I),
    ),
    Measure(
        "percentage",
        re.compile(r"\b(?:percentage|proportion|share|fraction|what percent)\b", re.I),
        None,
        _PERCENT,
    ),
    Measure("count", re.compile(r"\bhow\s+many\b|\bnumber\s+of\b", re.I), None, _COUNT),
    Measure("duration", re.compile(r"\bhow\s+long\b|\bfollow[- ]up\b", re.I), None, _DURATION),
    Measure(
        "figure",
        re.compile(
            r"\b(?:how\s+much|what\s+(?:\w+\s+)?(?:number|value|level|concentration|ratio|abstract))\b", re.I
        ),
        None,
        _ANY_NUMBER,
    ),
)


@dataclass(frozen=True)
class QuestionKind:
    kind: str
    measure: Measure | None = None  # for value questions: the figure asked for


def classify(question: str) -> QuestionKind:
    """The kind of answer ``question`` asks for, from its shape alone."""
    if _YESNO.match(question):
        return QuestionKind("yesno")
    if _DATE.search(question):
        return QuestionKind("date")
    measure = next((m for m in MEASURES if m.asks.search(question)), None)
    if measure is not None and not _MECHANISM.match(question):
        return QuestionKind("value", measure)
    if _MECHANISM.match(question):
        return QuestionKind("mechanism")
    d = _DEFINITION.match(question)
    if d and len(d.group("x").split()) <= 4:
        return QuestionKind("definition")
    if _LIST.match(question):
        return QuestionKind("list")
    return QuestionKind("other")


_YEAR = re.compile(r"\b(?:19|20)\d\d\b")


def holds(kind: QuestionKind, text: str) -> bool:
    """Whether ``text`` holds an answer of the asked kind; kinds without a checkable form always do."""
    if kind.kind == "date":
        return bool(_YEAR.search(text))
    if kind.kind != "value" or kind.measure is None:
        return True
    m = kind.measure
    if m.says is not None and not m.says.search(text):
        return False
    return bool(m.unit.search(text))
