"""Values compared across arms and landmarks: "60.4% vs 43.5%", "16.1 months ... compared with 11.6 months",
"93.4 and 66.0 %", "20%/60%/100% of pts in Arms A/B/C", "The 2- and 5-year OS rates were a % and b % in group A,
and c % and d % in group B", "... and the 5-year rates were 81.4 and 48.3 %"."""

from __future__ import annotations

import re
from dataclasses import dataclass

NUM = r"\d+(?:\.\d+)?"
UNIT = r"(?:%|months?\b|weeks?\b|years?\b|days?\b)"
VALUE = rf"(?:more than\s+|over\s+|>\s*|≥\s*|<\s*)?{NUM}\s*{UNIT}"
_LINK = r"\s*(?:,\s*and|,|and|vs\.?|versus|/)\s*"
# values sharing one unit: "93.4 and 66.0 %", "20/60/100%", "68.5, 41.4 and 56.8, 26.2 %"
SHARED_UNIT = rf"{NUM}(?:{_LINK}{NUM})+\s*%"
# a ratio measure takes a bare number: "HR 0.75", "hazard ratio (HR) was 0.229", "HR = 0.42"
RATIO_MEASURES = frozenset({"HR"})
# measures that are shares of patients: a time after them is how long a response lasted, not the measure's value
RATE_MEASURES = frozenset({"ORR", "CR", "PR", "DCR", "pCR", "clearance", "T-cell response"})

_VALUE_RE = re.compile(VALUE, re.IGNORECASE)
# who a value is for, between two values: "in the BTH1677 arm", "of patients in Arm B", "in group A"
_ARM_WORDS = re.compile(
    r"\b(?:in|for)\s+(?:the\s+)?(?:[\w/+-]+\s+){0,2}?(?:arm|group|cohort)s?(?:\s+[A-Z]\b)?"
    r"|\b(?:of\s+)?(?:patients|pts|subjects)(?:\s+in)?(?:\s+(?:arm|group)\s+[A-Z]\b)?"
    r"|\b(?:arm|group)\s+[A-Z]\b",
    re.IGNORECASE,
)
_JOINER = re.compile(
    r"^[\s,]*(?:vs\.?|versus|compared\s+(?:with|to)|and|/)?[\s,]*(?:and\s+)?$", re.IGNORECASE
)
_LANDMARK = re.compile(r"(?P<n>\d+)-(?P<unit>month|year)\s+$", re.IGNORECASE)
_LANDMARKS = re.compile(
    r"(?P<first>\d+)-?\s*(?:(?:,|and|or)\s*(?P<mid>\d+)-?\s*)*(?:,\s*)?(?:and|or)\s+(?P<n>\d+)-(?P<unit>month|year)\s+$",
    re.IGNORECASE,
)
_LATER = re.compile(
    rf"\b(?P<n>\d+)-(?P<unit>month|year)\s+(?:rates?\s+)?(?:was|were|of|:)?\s*(?P<value>{SHARED_UNIT}|{VALUE})",
    re.IGNORECASE,
)


@dataclass
class Stated:
    """One measure's values as a stretch of text states them."""

    measure: str
    value: str
    versus: list[str]
    start: int
    end: int


def _unit(value: str) -> str:
    m = re.search(r"%|month|week|year|day", value, re.IGNORECASE)
    return m.group(0).lower() if m else ""


def is_duration(value: str) -> bool:
    return _unit(value) in ("month", "week", "year", "day")


def tidy_value(value: str) -> str:
    """'93.4 %' -> '93.4%'; runs of spaces become one."""
    return re.sub(r"\s+%", "%", re.sub(r"\s+", " ", value.strip()))


def shared_unit_values(value: str) -> list[str]:
    """'93.4 and 66.0 %' -> ['93.4%', '66.0%']; any other value stays itself."""
    if not re.fullmatch(SHARED_UNIT, value):
        return [value]
    return [f"{n}%" for n in re.findall(NUM, value)]


def _gap_joins(gap: str) -> bool:
    """Only brackets, arm phrases and a joiner ('vs', 'compared with', 'and', '/') lie between two values."""
    depth, flat = 0, []
    for ch in gap:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                return False  # the values' own bracket closes: the comparison ends
            depth -= 1
        elif depth == 0:
            flat.append(ch)
    if depth:
        return False
    rest = _ARM_WORDS.sub(" ", "".join(flat))
    return bool(_JOINER.match(rest)) and not re.fullmatch(r"\s*", rest)


def other_arm_values(text: str, start: int, stop: int, first: str) -> tuple[list[str], int]:
    """The other arms' values after ``first`` (same unit), and where the comparison ends."""
    unit, pos, out = _unit(first), start, []
    for m in _VALUE_RE.finditer(text, start, stop):
        gap = text[pos : m.start()]
        if m.start() < pos or gap.count("(") + gap.count("[") > gap.count(")") + gap.count("]"):
            continue  # inside a bracket: a confidence interval, not another arm
        if _unit(m.group(0)) != unit or not _gap_joins(text[pos : m.start()]):
            break
        out.append(tidy_value(m.group(0)))
        pos = m.end()
    return out, pos


def landmarks_before(before: str) -> list[str]:
    """'2-year ' -> ['2-year']; 'The 2- and 5-year ' -> ['2-year', '5-year']."""
    many = _LANDMARKS.search(before)
    if many:
        unit = many.group("unit").lower()
        numbers = re.findall(r"\d+", many.group(0))
        return [f"{n}-{unit}" for n in numbers]
    one = _LANDMARK.search(before)
    return [f"{one.group('n')}-{one.group('unit').lower()}"] if one else []


def split_landmarks(values: list[str], landmarks: list[str], arm_phrases: bool) -> list[list[str]]:
    """Values for several landmarks, per landmark. With an arm phrase after each arm's values ('a % and b % in
    group A, c % and d % in group B') they run arm by arm; listed bare ('a, b and c, d %') landmark by landmark."""
    k = len(landmarks)
    if k < 2 or len(values) % k:
        return []
    if arm_phrases:
        return [values[i::k] for i in range(k)]
    arms = len(values) // k
    return [values[i * arms : (i + 1) * arms] for i in range(k)]


def has_arm_phrase(text: str) -> bool:
    return bool(_ARM_WORDS.search(text))


def later_landmarks(text: str, start: int, stop: int, measure: str) -> list[Stated]:
    """'..., and the 5-year rates were 81.4 and 48.3 %': more landmarks of the measure just stated."""
    out = []
    for m in _LATER.finditer(text, start, stop):
        values = shared_unit_values(tidy_value(m.group("value")))
        more, end = other_arm_values(text, m.end(), stop, values[0])
        label = f"{m.group('n')}-{m.group('unit').lower()} {measure}"
        out.append(Stated(label, values[0], values[1:] + more, m.start(), max(end, m.end())))
    return out
