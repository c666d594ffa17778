"""Outcome measures with value and denominator: "ORR of 59.5% (22/37)", "CR in seven patients (18.9%)"."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from qa.facts.comparisons import (
    RATE_MEASURES,
    RATIO_MEASURES,
    SHARED_UNIT,
    VALUE,
    Stated,
    has_arm_phrase,
    is_duration,
    landmarks_before,
    later_landmarks,
    other_arm_values,
    shared_unit_values,
    split_landmarks,
    tidy_value,
)
from qa.facts.vocab import Mention

_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]
NUMBER_WORDS = {w: i for i, w in enumerate(_WORDS)}
_COUNT = rf"(?:\d+|{'|'.join(_WORDS)})"
_PAREN = r"(?:\s*\((?P<detail>[^()]{1,40})\))?"
# "rates in groups A and B", "for the entire cohort of 19 patients": who the value is for, between measure and value
_WHO = (
    r"(?:\s+rates?)?(?:\s+(?:in|for|of)\s+(?:both\s+)?(?:groups?|arms?)\s+[A-Z](?:\s*(?:,|and|/)\s*[A-Z])*)?"
    r"(?:\s+(?:for|in|among)\s+(?:the\s+)?(?:entire\s+|whole\s+|overall\s+)?(?:cohort|population)"
    r"(?:\s+of\s+\d+\s+(?:patients|subjects))?)?"
    r"(?:\s+of\s+(?:patients|subjects)(?:\s+in\s+the\s+[\w/+-]+\s+(?:arm|group))?)?"
)

# measure ... value: "ORR of 59.5% (22/37)", "response rate of the combination therapy was 25% (28/83)",
# "ORR (60.4% vs 43.5%; P = .2096)", "HR was 0.229"
_AFTER_VALUE = re.compile(
    rf"^(?:\s*\([^()]{{1,20}}\))?{_WHO}(?:\s+[\w-]+){{0,5}}?\s*(?:of|was|were|is|reached|:|=|as high as)?\s*\(?"
    rf"(?:approximately\s+|about\s+|only\s+|as high as\s+)?(?P<value>{SHARED_UNIT}|{VALUE}){_PAREN}",
    re.IGNORECASE,
)
# a ratio takes a bare number: "HR 0.75", "hazard ratio (HR) was 0.229", "HR = 0.42", "HR 1.31 [95% CI ...]"
_AFTER_RATIO = re.compile(
    r"^(?:\s*\([^()]{1,20}\))?\s*(?:,|:|=|of|was|is)?\s*(?P<value>\d*\.\d+|\d+(?=\s*[(\[;,]))",
    re.IGNORECASE,
)
# measure in N patients (x%): "CRs in seven patients (18.9%)", "CR in approximately 12% of patients"
_AFTER_COUNT = re.compile(
    rf"^(?:\s*\([^()]{{1,20}}\))?\s*in\s+(?:approximately\s+)?(?:(?P<n>{_COUNT})\s+(?:patients?|subjects?|cases?)(?:\s*\((?P<pct>\d+(?:\.\d+)?%)\))?"
    rf"|(?P<share>\d+(?:\.\d+)?%)\s+of\s+patients)",
    re.IGNORECASE,
)
# N patients (x%) achieving measure: "13 patients (43%) achieving CR"
_BEFORE_COUNT = re.compile(
    rf"(?P<n>{_COUNT})\s+(?:of\s+(?P<d>\d+)\s+)?(?:\((?P<pct>\d+(?:\.\d+)?%)\)\s+)?(?:of\s+these\s+)?patients?"
    rf"(?:\s*\((?:(?P<pct2>\d+(?:\.\d+)?%)|[^()]*)\))?\s+(?:achieving|achieved|had|with)\s+(?:a\s+|an\s+)?$",
    re.IGNORECASE,
)
_NOT_REACHED = re.compile(r"^(?:\s+was|\s+were)?\s+not\s+(?:achieved|reached)|^\s+NR\b", re.IGNORECASE)
_NOT_REACHED_BEFORE = re.compile(r"(?:not|never)\s+reach(?:ed)?\s+(?:an?\s+|the\s+)?$", re.IGNORECASE)


@dataclass
class Outcome:
    measure: str
    value: str
    detail: str | None = None
    n: int | None = None
    denominator: int | None = None
    start: int = 0
    end: int = 0
    text: str = ""
    versus: list[str] = field(default_factory=list)  # the other arms' values, in the paper's order
    quote: str = ""  # the sentence that states it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count(token: str | None) -> int | None:
    if not token:
        return None
    return int(token) if token.isdigit() else NUMBER_WORDS.get(token.lower())


def _patients(n: int | None) -> str:
    return f"{n} patient" if n == 1 else f"{n} patients"


def _fraction(detail: str | None) -> tuple[int | None, int | None]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", detail or "")
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def parse_outcomes(text: str, mentions: list[Mention], start: int, end: int) -> list[Outcome]:
    """Outcomes stated in ``text[start:end]``, from the outcome-measure mentions found there."""
    found_all = sorted(
        (m for m in mentions if m.kind == "outcome" and start <= m.start < end), key=lambda m: m.start
    )
    # "objective response rate (ORR)": the bracketed abbreviation repeats the measure
    measures = [
        m for i, m in enumerate(found_all) if not (i and text[found_all[i - 1].end : m.start].strip() == "(")
    ]
    out: list[Outcome] = []
    for i, m in enumerate(measures):
        next_start = min(measures[i + 1].start if i + 1 < len(measures) else end, end)
        stop = min(next_start, m.end + 80)
        after = text[m.end : stop]
        before = text[max(start, m.start - 60) : m.start]
        name = m.name
        if name in RATIO_MEASURES and i:
            name = f"{measures[i - 1].name} {name}"  # "PFS ... (HR 1.31)": the ratio of the measure before
        landmarks = landmarks_before(before)
        measure = f"{landmarks[0]} {name}" if len(landmarks) == 1 else name
        found = _parse_one(measure, after, before, ratio=m.name in RATIO_MEASURES)
        if found is None or (m.name in RATE_MEASURES and is_duration(found.value)):
            continue  # "maintained CR for an additional 19 weeks": how long, not how many
        found.start, found.end = (
            (m.start, m.end + found.end) if found.end >= 0 else (m.start + found.end, m.end)
        )
        if found.end > m.end and found.value[:1].isdigit():
            tail_start = found.end
            more, tail_end = other_arm_values(
                text, tail_start, min(next_start, tail_start + 200), found.value
            )
            found.versus.extend(more)
            found.end = max(found.end, tail_end)
            if len(landmarks) > 1:
                values = [found.value, *found.versus]
                arm_phrases = has_arm_phrase(text[found.start : found.end])
                for label, mine in zip(
                    landmarks, split_landmarks(values, landmarks, arm_phrases), strict=False
                ):
                    out.append(
                        _stated(text, Stated(f"{label} {name}", mine[0], mine[1:], found.start, found.end))
                    )
                continue
            found.text = text[found.start : found.end]
            out.append(found)
            out.extend(_stated(text, st) for st in later_landmarks(text, found.end, next_start, name))
            continue
        found.text = text[found.start : found.end]
        out.append(found)
    return out


def _stated(text: str, st: Stated) -> Outcome:
    return Outcome(
        st.measure, st.value, start=st.start, end=st.end, text=text[st.start : st.end], versus=st.versus
    )


def _parse_one(measure: str, after: str, before: str, *, ratio: bool = False) -> Outcome | None:
    """An outcome whose ``end`` is chars consumed after the mention (or minus chars used before it)."""
    if ratio:
        r = _AFTER_RATIO.match(after)
        return Outcome(measure, r.group("value"), end=r.end()) if r else None
    if m := _AFTER_COUNT.match(after):
        if m.group("share"):
            return Outcome(measure, m.group("share"), end=m.end())
        n = _count(m.group("n"))
        value = m.group("pct") or _patients(n)
        return Outcome(measure, value, detail=_patients(n), n=n, end=m.end())
    if m := _AFTER_VALUE.match(after):
        values = shared_unit_values(tidy_value(m.group("value")))
        value, versus = values[0], values[1:]
        detail = m.group("detail")
        if detail and re.fullmatch(r"\d{1,3}(?:\s*[,–-]\s*\d{1,3})*", detail.strip()):
            detail = None  # "(105)" is the paper's reference number, not a count
        n, d = _fraction(detail)
        return Outcome(measure, value, detail=detail, n=n, denominator=d, end=m.end(), versus=versus)
    if m := _NOT_REACHED.match(after):
        return Outcome(measure, "not reached", end=m.end())
    if m := _NOT_REACHED_BEFORE.search(before):
        return Outcome(measure, "not reached", end=-len(before) + m.start())
    if m := _BEFORE_COUNT.search(before):
        n, d = _count(m.group("n")), int(m.group("d")) if m.group("d") else None
        value = m.group("pct") or m.group("pct2") or _patients(n)
        detail = f"{n}/{d} patients" if d else _patients(n)
        return Outcome(measure, value, detail=detail, n=n, denominator=d, end=-len(before) + m.start())
    return None
