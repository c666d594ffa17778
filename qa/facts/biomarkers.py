"""Biomarker selections a sentence states: "PD-L1 TPS ≥ 1%", "high PD-L1 expression", "PD-L1-negative".

Each becomes a label ("PD-L1 ≥ 50%", "PD-L1-high", "PD-L1-positive", "EGFR wild-type") that a question's own
biomarker phrase is compared with by meaning: a trial of PD-L1 ≥ 50% is a trial of PD-L1-positive patients.
"""

from __future__ import annotations

import re

from qa.facts.vocab import Mention

_SCORE = r"(?:\s*\([^()]{1,30}\))?(?:\s*(?:tumou?r proportion score|TPS|combined positive score|CPS|expression|score|levels?|staining)(?:\s*\([^()]{1,10}\))?)*"
_CMP = r"(?P<cmp>≥|>=|=>|>|≤|<=|<|=|(?:of\s+)?(?:at least|greater than|more than|over|less than|below|above))"
_THRESHOLD = re.compile(rf"^{_SCORE}\s*(?:of\s+)?{_CMP}\s*(?P<num>\d+(?:\.\d+)?)\s*%", re.IGNORECASE)
_AFTER = re.compile(
    rf"^{_SCORE}\s*(?:-|\s)?(?P<word>high|low|positive|negative|wild[- ]type|mutant|mutated|mutations?|amplified|amplification|\+(?![\w]))",
    re.IGNORECASE,
)
_BEFORE = re.compile(
    r"(?P<word>high|low|positive|negative|wild[- ]type|mutant|mutated|amplified)\s+$", re.IGNORECASE
)
_LOWER = {"<", "≤", "<=", "less than", "below"}
_WORDS = {
    "+": "positive",
    "mutated": "mutant",
    "mutation": "mutant",
    "mutations": "mutant",
    "amplification": "amplified",
    "wild type": "wild-type",
}
_STANDALONE = [  # biomarkers that are not a target of the vocabulary
    (re.compile(r"\bMSI[- ]?(?:H|high)\b|\bmicrosatellite instability[- ]high\b", re.IGNORECASE), "MSI-high"),
    (re.compile(r"\bdMMR\b|\bmismatch repair[- ]deficien\w*", re.IGNORECASE), "dMMR"),
    (
        re.compile(r"\bTMB[- ]?(?:H|high)\b|\bhigh (?:tumou?r )?mutational burden\b", re.IGNORECASE),
        "TMB-high",
    ),
]


def _word(raw: str) -> str:
    w = raw.lower().replace("wild type", "wild-type")
    return _WORDS.get(w, w)


def find_biomarkers(text: str, mentions: list[Mention], start: int, end: int) -> list[str]:
    """Biomarker labels stated in ``text[start:end]`` around target mentions (and MSI-high, dMMR, TMB-high)."""
    out: list[str] = []
    for m in mentions:
        if m.kind != "target" or not (start <= m.start and m.end <= end):
            continue
        after = text[m.end : min(end, m.end + 80)]
        before = text[max(start, m.start - 20) : m.start]
        label = None
        if hit := _THRESHOLD.match(after):
            cmp = hit.group("cmp").lower().replace("of ", "").strip()
            sign = "<" if cmp in _LOWER else "≥"
            label = f"{m.name} {sign} {hit.group('num')}%"
        elif (hit := _AFTER.match(after)) or (hit := _BEFORE.search(before)):
            label = f"{m.name}-{_word(hit.group('word'))}"
        if label and label not in out:
            out.append(label.replace("-wild-type", " wild-type"))
    for rx, label in _STANDALONE:
        if rx.search(text, start, end) and label not in out:
            out.append(label)
    return out


_LABEL = re.compile(
    r"^(?P<marker>.+?)(?: (?P<sign>≥|<) (?P<num>\d+(?:\.\d+)?)%|[- ](?P<word>high|low|positive|negative|wild-type|mutant|amplified))?$"
)


def _parse(label: str) -> tuple[str, str | None, float | None, str | None]:
    m = _LABEL.match(label)
    assert m is not None
    num = float(m.group("num")) if m.group("num") else None
    return m.group("marker"), m.group("sign"), num, m.group("word")


def biomarker_satisfies(have: str, wanted: str) -> bool:
    """Whether a trial's biomarker ``have`` meets a question's ``wanted`` (thresholds compared, not spelled)."""
    if have == wanted:
        return True
    hm, hs, hn, hw = _parse(have)
    wm, ws, wn, ww = _parse(wanted)
    if hm != wm:
        return False
    if ws is None and ww is None:  # "by PD-L1 expression": any selection on the marker
        return True
    positive = (hs == "≥" and hn is not None and hn > 0) or hw in ("positive", "high")
    if ws == "≥" and wn is not None:  # patients of >= 50% all have >= 1%; "high" is the usual >= 50%
        return (hs == "≥" and hn is not None and hn >= wn) or (hw == "high" and wn <= 50)
    if ws == "<" and wn is not None:
        return (hs == "<" and hn is not None and hn <= wn) or hw == "negative"
    if ww == "positive":
        return positive
    if ww == "high":
        return hs == "≥" and hn is not None and hn >= 50
    if ww in ("negative", "low"):
        return hw in ("negative", "low") or (hs == "<" and hn is not None and hn <= 1)
    return False
