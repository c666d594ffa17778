"""OCR'd table text: registry ids and study names there only count when they match the body text.

"NCT08099109" in a table is a misprint of the body's NCT03099109; "NGT03004183" of NCT03004183. Such
ids are reconciled to the body id within one character, or dropped; they never become trials.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qa.documents import Document, reference_numbers
from qa.facts.extract import PassageFinder
from qa.facts.model import Evidence, Trial
from qa.facts.studies import NCT_LOOSE, name_key

_OCR_DIGITS = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "|": "1"})
_OCR_LETTERS = str.maketrans({"1": "I", "0": "O", "|": "I", "l": "I"})


@dataclass
class OcrNote:
    doc_id: str
    text: str
    start: int
    end: int
    resolved_to: str | None  # the body id it was reconciled to, or None when dropped
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def normalize_nct(raw: str) -> str:
    digits = re.sub(r"\s", "", raw)[3:].translate(_OCR_DIGITS)
    return "NCT" + digits


def _closest(value: str, known: list[str], limit: int) -> str | None:
    scored = sorted((levenshtein(value, k), k) for k in known)
    if not scored or scored[0][0] > limit:
        return None
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        return None  # two body ids equally close: ambiguous, drop
    return scored[0][1]


def _lines(doc: Document) -> list[tuple[int, int]]:
    out = []
    for block in doc.blocks:
        if block.kind == "table":
            for m in re.finditer(r"[^\n]+", doc.text[block.start : block.end]):
                if m.group(0).strip():
                    out.append((block.start + m.start(), block.start + m.end()))
    return out


def reconcile_tables(docs: Sequence[Document], trials: list[Trial], finder: PassageFinder) -> list[OcrNote]:
    """Attach table lines to the body trials they name; report every id that was corrected or dropped."""
    by_nct = {n: t for t in trials for n in t.nct_ids}
    names = {name_key(n).translate(_OCR_LETTERS): t for t in trials for n in [t.name, *t.aliases] if n}
    notes: list[OcrNote] = []
    for doc in docs:
        for start, end in _lines(doc):
            line = doc.text[start:end]
            for hit in NCT_LOOSE.finditer(line):
                raw, nct = hit.group(0), normalize_nct(hit.group(0))
                target = nct if nct in by_nct else _closest(nct, list(by_nct), 1)
                where = (start + hit.start(), start + hit.end())
                if target is None:
                    notes.append(OcrNote(doc.id, raw, *where, None, "no body text names this id"))
                    continue
                note = None if raw == target else f"table text reads '{raw}', read as {target}"
                if note:
                    notes.append(OcrNote(doc.id, raw, *where, target, "misprint of a body id"))
                _attach(by_nct[target], doc, start, end, finder, note)
            for token in re.finditer(r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]", line):
                key = name_key(token.group(0)).translate(_OCR_LETTERS)
                if len(key) < 5 or NCT_LOOSE.fullmatch(token.group(0)):
                    continue
                trial = names.get(key)
                if trial is None and len(key) >= 6:
                    close = _closest(key, list(names), 1)
                    trial = names.get(close) if close else None
                if trial is not None:
                    note = (
                        None
                        if name_key(token.group(0))
                        in {name_key(n) for n in [trial.name, *trial.aliases] if n}
                        else (f"table text reads '{token.group(0)}', read as {trial.name}")
                    )
                    _attach(trial, doc, start, end, finder, note)
    return notes


def _attach(
    trial: Trial, doc: Document, start: int, end: int, finder: PassageFinder, note: str | None
) -> None:
    if any(e.doc_id == doc.id and e.start == start for e in trial.evidence):
        return
    quote = doc.text[start:end]
    role = "ocr-corrected" if note else "mention"
    trial.evidence.append(
        Evidence(
            finder.find(doc.id, start, end),
            doc.id,
            quote,
            start,
            end,
            reference_numbers(quote),
            "table",
            role,
            note,
        )
    )
