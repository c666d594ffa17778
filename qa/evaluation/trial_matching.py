"""Trial lists scored against human-written entries: precision, recall and F1 of the returned `trials`.

TRIAL MATCHING. Expected entries are written by people, e.g. "PIVOT-02 (NCT02983045): NKTR-214 + nivolumab",
"TACTI-003: eftilagimod alpha + pembrolizumab in ...", "trial of CMP-001 + nivolumab + ipilimumab in
melanoma"; the API returns records {id, name, nct_ids, aliases, label, interventions, ...}. An expected
entry is parsed into its NCT ids, its name (the text before the first " (" or ":", unless the entry starts
with "trial of") and its drugs (after ":" or "trial of", up to " in ", split on "+"). A returned trial
matches an entry, trying in order:
  1. NCT ids: the entry has NCT ids and one of them is among the trial's nct_ids or is its id;
  2. name: the entry's name equals the trial's name, id, label or one of its aliases, compared
     case-insensitively with spaces, hyphens and underscores dropped ("IMpower 150" == "impower-150");
  3. drugs, only when the entry has neither NCT ids nor a name: every drug of the entry is among the trial's
     interventions, both mapped to one canonical name through GET /api/drugs (a code name such as CMP-001
     equals vidutolimod).
Each expected entry is credited once: a second returned trial matching an already matched entry counts as a
false positive (a duplicate row). A returned trial matching an `acceptable` entry is neither rewarded nor
penalised (left out of precision). Precision is 0 when nothing is returned; F1 is 0 when P or R is 0; with
no expected entries, F1 is 1 for an empty list and 0 otherwise.
"""

from __future__ import annotations

import re
from typing import Any

NCT = re.compile(r"NCT\d{8}", re.IGNORECASE)


def key(text: str | None) -> str:
    """A name compared robustly: lower case, no spaces, hyphens or underscores."""
    return re.sub(r"[\s\-_]+", "", (text or "").lower())


def parse_expected(entry: str) -> dict[str, Any]:
    """NCT ids, name and drugs of a human-written trial entry (see TRIAL MATCHING in the module doc)."""
    ncts = [n.upper() for n in NCT.findall(entry)]
    name, drugs_part = None, ""
    stripped = entry.strip()
    if stripped.lower().startswith("trial of "):
        drugs_part = stripped[len("trial of ") :]
    else:
        head = re.split(r"\s*\(|:", stripped, maxsplit=1)[0].strip()
        if head and not NCT.fullmatch(head):
            name = head
        if ":" in stripped:
            drugs_part = stripped.split(":", 1)[1]
    drugs_part = NCT.sub("", re.sub(r"\([^)]*\)", "", drugs_part))
    drugs_part = re.split(r"\s+in\s+", drugs_part, maxsplit=1)[0]
    drugs = [d.strip() for d in drugs_part.split("+") if d.strip()]
    return {"text": entry, "nct_ids": ncts, "name": name, "drugs": drugs}


class TrialMatcher:
    def __init__(self, drugs: list[dict[str, Any]]) -> None:
        self.canonical: dict[str, str] = {}
        for d in drugs:
            for alias in [d.get("name", ""), *d.get("aliases", [])]:
                self.canonical.setdefault(key(alias), key(d.get("name", "")))

    def drug(self, name: str) -> str:
        return self.canonical.get(key(name), key(name))

    def matches(self, expected: dict[str, Any], trial: dict[str, Any]) -> bool:
        if expected["nct_ids"]:
            ids = {n.upper() for n in trial.get("nct_ids") or []} | {str(trial.get("id", "")).upper()}
            if ids & set(expected["nct_ids"]):
                return True
        if expected["name"]:
            names = [trial.get("name"), trial.get("id"), trial.get("label"), *(trial.get("aliases") or [])]
            if key(expected["name"]) in {key(n) for n in names if n}:
                return True
        if not expected["nct_ids"] and not expected["name"] and expected["drugs"]:
            have = {self.drug(i) for i in trial.get("interventions") or []}
            return all(self.drug(d) in have for d in expected["drugs"])
        return False

    def score(
        self, trials: list[dict[str, Any]], expected: list[str], acceptable: list[str]
    ) -> dict[str, Any]:
        exp = [parse_expected(e) for e in expected]
        acc = [parse_expected(a) for a in acceptable]
        matched: set[int] = set()
        verdicts = []
        tp = fp = 0
        for t in trials:
            hit = next((i for i, e in enumerate(exp) if self.matches(e, t)), None)
            if hit is not None and hit not in matched:
                matched.add(hit)
                tp += 1
                verdicts.append("expected")
            elif hit is None and any(self.matches(a, t) for a in acc):
                verdicts.append("acceptable")
            else:
                fp += 1
                verdicts.append("duplicate" if hit is not None else "false positive")
        if not exp:
            p = r = f1 = 1.0 if tp + fp == 0 else 0.0
        else:
            p = tp / (tp + fp) if tp + fp else 0.0
            r = len(matched) / len(exp)
            f1 = 2 * p * r / (p + r) if p and r else 0.0
        return {
            "precision": p,
            "recall": r,
            "f1": f1,
            "verdicts": verdicts,
            "missing": [e["text"] for i, e in enumerate(exp) if i not in matched],
        }
