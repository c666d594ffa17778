"""Fact records: trials (with outcomes and evidence) and drugs, as plain dataclasses that round-trip JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from qa.facts.outcomes import Outcome
from qa.facts.vocab import Vocabulary


@dataclass
class Evidence:
    passage_id: str
    doc_id: str
    quote: str
    start: int
    end: int
    refs: list[int] = field(default_factory=list)
    kind: str = "body"  # body | caption | table
    role: str = "mention"  # mention | continuation | context | ocr-corrected
    note: str | None = None


@dataclass
class Trial:
    id: str
    name: str | None = None
    nct_ids: list[str] = field(default_factory=list)
    registry_ids: list[str] = field(default_factory=list)  # other registries: "UMIN000007525", "ISRCTN..."
    aliases: list[str] = field(default_factory=list)
    phase: str | None = None
    interventions: list[str] = field(default_factory=list)
    arms: list[str] = field(
        default_factory=list
    )  # "BTH1677 arm", "chemotherapy (group B)", as the paper names them
    drug_classes: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    setting: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    status: str | None = None
    designations: list[str] = field(default_factory=list)
    biomarkers: list[str] = field(default_factory=list)  # "PD-L1 ≥ 50%", "PD-L1-high", "EGFR wild-type"
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def primary(self) -> Evidence:
        return self.evidence[0]

    @property
    def label(self) -> str:
        """A short human name: the acronym and NCT id, or the interventions."""
        ids = self.nct_ids or self.registry_ids
        head = self.name or (ids[0] if ids else " + ".join(self.interventions) or self.id)
        if self.name and ids:
            head = f"{self.name} ({', '.join(ids)})"
        return head

    def to_dict(self) -> dict[str, Any]:
        p = self.primary
        data = asdict(self)
        data.update(
            label=self.label,
            quote=p.quote,
            passage_id=p.passage_id,
            doc_id=p.doc_id,
            start=p.start,
            end=p.end,
            refs=p.refs,
            source_kind=p.kind,
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trial:
        keep = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        keep["outcomes"] = [Outcome(**o) for o in data.get("outcomes", [])]
        keep["evidence"] = [Evidence(**e) for e in data.get("evidence", [])]
        return cls(**keep)


@dataclass
class DrugRecord:
    name: str
    aliases: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    trials: list[str] = field(default_factory=list)
    designations: list[str] = field(default_factory=list)
    source: str = "vocabulary"
    mentions: int = 0
    evidence: list[Evidence] = field(default_factory=list)  # where the documents name it, first few
    learned: list[dict[str, Any]] = field(default_factory=list)  # what the documents taught about it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DrugRecord:
        keep = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        keep["evidence"] = [Evidence(**e) for e in data.get("evidence", [])]
        return cls(**keep)


@dataclass
class FactRecords:
    """What a build extracts from its documents, before it is filed (:mod:`qa.facts.db`): the vocabulary
    grown from them, the trials in document order, the drugs they name (sorted by name), what the documents
    taught (``learned``) and the OCR'd table text reconciled with the body (``ocr``)."""

    vocab: Vocabulary
    trials: list[Trial]
    drugs: dict[str, DrugRecord]
    learned: list[dict[str, Any]] = field(default_factory=list)
    ocr: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (that of the facts.json of builds before the facts were filed in SQLite)."""
        return {
            "version": 1,
            "vocabulary": self.vocab.to_dict(),
            "trials": [t.to_dict() for t in self.trials],
            "drugs": [d.to_dict() for d in self.drugs.values()],
            "learned": self.learned,
            "ocr": self.ocr,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FactRecords:
        return cls(
            Vocabulary(data["vocabulary"]),
            [Trial.from_dict(t) for t in data["trials"]],
            {d["name"]: DrugRecord.from_dict(d) for d in data["drugs"]},
            list(data.get("learned") or []),
            list(data.get("ocr") or []),
        )
