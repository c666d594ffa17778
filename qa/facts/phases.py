"""Trial phases written every way papers write them ("phase III", "phase 3", "Ia/Ib", "II/III", OCR "lll")."""

from __future__ import annotations

import re

_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4}
_TOKEN = r"(?:IV|[Il|]{1,3}|[1-4])[ab]?"
_JOIN = r"\s*(?:/|-|–|\band\b|\bor\b)\s*(?:phase\s+)?"
PHASE_RE = re.compile(rf"(?i:\bphases?)\s+(?P<body>{_TOKEN}(?:{_JOIN}{_TOKEN})*)(?![A-Za-z0-9])")


def _number(token: str) -> tuple[int, str] | None:
    letter = token[-1] if token[-1] in "ab" else ""
    core = token[:-1] if letter else token
    if core.isdigit():
        return int(core), letter
    roman = re.sub(r"[l|1]", "I", core)
    return (_ROMAN[roman], letter) if roman in _ROMAN else None


def normalize_phase(text: str) -> str | None:
    """'phase Ia/Ib' -> 'Phase 1a/1b'; 'phase II/III' -> 'Phase 2/3'; 'Phase II and III' -> 'Phase 2 or 3'."""
    match = PHASE_RE.search(text)
    return _normalize_body(match.group("body")) if match else None


def _normalize_body(body: str) -> str | None:
    tokens = re.findall(_TOKEN, re.sub(r"(?i)phase", " ", body))
    parts = [p for t in tokens if (p := _number(t))]
    if not parts:
        return None
    joiner = " or " if re.search(r"\b(?:and|or)\b", body) else "/"
    return "Phase " + joiner.join(f"{n}{letter}" for n, letter in parts)


def find_phases(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int, str]]:
    """(start, end, normalized) for each phase mention in text[start:end]."""
    out = []
    for m in PHASE_RE.finditer(text, start, len(text) if end is None else end):
        norm = _normalize_body(m.group("body"))
        if norm:
            out.append((m.start(), m.end(), norm))
    return out


def phase_numbers(phase: str | None) -> set[int]:
    """The phase numbers a normalized phase covers: 'Phase 1/2' -> {1, 2}; 'Phase 1b' -> {1}."""
    return {int(n) for n in re.findall(r"(\d)[ab]?", phase or "")}
