"""Trial registry ids of the registries papers cite: ClinicalTrials.gov, UMIN, ISRCTN, EudraCT, ChiCTR, JapicCTI, jRCT ...

Each pattern tolerates the spellings papers use ("UMIN: 000007525", "UMIN000007525", "UMIN-CTR 000007525",
"EudraCT number 2004-001234-12", "ChiCTR-TRC-12002500") and normalizes to the registry's own form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_B = r"(?<![A-Za-z0-9])"
_E = r"(?![A-Za-z0-9])"
_SEP = r"\s*(?:(?:ID|No\.?|number|identifier)\s*)?[:#]?\s*"

# registry -> (pattern, how to normalize its match)
_REGISTRIES: dict[str, re.Pattern[str]] = {
    "ClinicalTrials.gov": re.compile(rf"{_B}NCT(?P<id>\d{{8}}){_E}"),
    "UMIN": re.compile(rf"{_B}UMIN(?:-CTR)?{_SEP}(?P<id>\d{{9}}){_E}"),
    "ISRCTN": re.compile(rf"{_B}ISRCTN{_SEP}(?P<id>\d{{8}}){_E}"),
    "EudraCT": re.compile(rf"{_B}EudraCT{_SEP}(?P<id>(?:19|20)\d{{2}}-\d{{6}}-\d{{2}}){_E}", re.IGNORECASE),
    "ChiCTR": re.compile(rf"{_B}ChiCTR(?P<id>-?(?:[A-Z]{{2,4}}-)?\d{{8,10}}){_E}"),
    "JapicCTI": re.compile(rf"{_B}JapicCTI{_SEP}-?(?P<id>\d{{6}}){_E}"),
    "jRCT": re.compile(rf"{_B}jRCT(?P<id>[a-z]?\d{{10}}){_E}"),
    "ANZCTR": re.compile(rf"{_B}ACTRN{_SEP}(?P<id>\d{{14}}){_E}"),
    "DRKS": re.compile(rf"{_B}DRKS{_SEP}(?P<id>\d{{8}}){_E}"),
    "CTRI": re.compile(rf"{_B}CTRI/(?P<id>\d{{4}}/\d{{2,3}}/\d{{6}}){_E}"),
}
_PREFIX = {
    "ClinicalTrials.gov": "NCT",
    "UMIN": "UMIN",
    "ISRCTN": "ISRCTN",
    "EudraCT": "EudraCT ",
    "ChiCTR": "ChiCTR",
    "JapicCTI": "JapicCTI-",
    "jRCT": "jRCT",
    "ANZCTR": "ACTRN",
    "DRKS": "DRKS",
    "CTRI": "CTRI/",
}
# "ClinicalTrials.gov registration ID: NCT...", "registered at UMIN (UMIN: ...)", "Trial registration": a paper's own id
REGISTRATION_CUE = re.compile(
    r"\bregist(?:ered|ration|ry)\b|ClinicalTrials?\.gov\s+(?:ID|identifier|number)|\btrial\s+(?:number|identifier)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RegistryId:
    registry: str
    value: str  # normalized: "NCT00874107", "UMIN000007525", "EudraCT 2004-001234-12"
    start: int
    end: int

    @property
    def is_nct(self) -> bool:
        return self.registry == "ClinicalTrials.gov"


def find_registry_ids(text: str, start: int = 0, end: int | None = None) -> list[RegistryId]:
    """Every registry id in ``text[start:end]``, in order of appearance."""
    stop = len(text) if end is None else end
    out = [
        RegistryId(name, _PREFIX[name] + m.group("id"), m.start(), m.end())
        for name, rx in _REGISTRIES.items()
        for m in rx.finditer(text, start, stop)
    ]
    return sorted(out, key=lambda r: r.start)


def registry_of(value: str) -> str | None:
    """The registry a normalized id belongs to ('UMIN000007525' -> 'UMIN')."""
    return next((r.registry for r in find_registry_ids(value)), None)
