"""Read a follow-up against the previous turn, without a language model.

Two moves cover what people do in a thread:
- ellipsis, "What about nivolumab?": the previous question again, with the new entity in place of
  the previous entity of the same group (drug, class or target; condition; phase; setting);
- reference, "Which of them are in melanoma?": the previous question narrowed by the new
  constraints, and the previous turn's trials as the set to narrow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class MentionLike(Protocol):
    """Read-only, so that frozen records (qa.facts.vocab.Mention) qualify."""

    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def text(self) -> str: ...


class Tagger(Protocol):
    def find(
        self, text: str, start: int = 0, end: int | None = None, kinds: set[str] | None = None
    ) -> Sequence[MentionLike]: ...


# Entities that can stand in for one another in "what about X?"
GROUPS = {"drug": "intervention", "class": "intervention", "target": "intervention"}
ELLIPSIS = re.compile(
    r"^\s*(?:and\s+|but\s+|ok(?:ay)?,?\s+)?(?:what|how)\s+about\s+(?P<x>.+?)\s*[?.!]*\s*$"
    r"|^\s*(?:and|also|same\s+(?:question\s+)?for|now|then)\s+(?:for\s+|with\s+|in\s+)?(?P<y>.+?)\s*[?.!]*\s*$"
    r"|^\s*(?:what|how)\s+if\s+(?:we\s+use\s+|it\s+is\s+)?(?P<z>.+?)\s*[?.!]*\s*$",
    re.IGNORECASE,
)
REFERENCE = re.compile(
    r"\b(?:them|those|these|they|it|its|their|such\s+(?:trials|studies|drugs)|the\s+same|that\s+(?:trial|study|drug)"
    r"|these\s+(?:trials|studies)|of\s+which)\b",
    re.IGNORECASE,
)
# "Which of them are", "Are any of these", "Do they", "How many of those were": the part that only points back.
ANAPHORIC_LEAD = re.compile(
    r"^\s*(?:(?:which|what|how\s+many|are|were|is|was|do|does|did|have|has)\s+)?(?:any\s+|all\s+|one\s+|some\s+)?"
    r"(?:of\s+)?(?:them|those|these|they|it)(?:\s+(?:trials|studies|drugs))?"
    r"(?:\s+(?:are|is|were|was|have|has|had|do|does|did|being|been|also|used|tested|run))*\s*",
    re.IGNORECASE,
)
CODE_NAME = re.compile(
    r"^[A-Z][A-Za-z]{0,6}-?\d{2,6}[A-Za-z]?$|^\w+(?:mab|nib|cel|cept|ib|leukin|kin)$", re.IGNORECASE
)


@dataclass
class Resolution:
    resolved: str
    kind: str = "new"  # new | ellipsis | reference
    entities: dict[str, list[str]] = field(default_factory=dict)


def entities_of(tagger: Tagger | None, text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in tagger.find(text) if tagger else []:
        out.setdefault(m.kind, [])
        if m.name not in out[m.kind]:
            out[m.kind].append(m.name)
    return out


def _group(kind: str) -> str:
    return GROUPS.get(kind, kind)


def resolve(question: str, previous: str | None, tagger: Tagger | None) -> Resolution:
    """The standalone question that ``question`` means after ``previous`` (the previous resolved question)."""
    q = question.strip()
    if not previous:
        return Resolution(q, "new", entities_of(tagger, q))
    ellipsis = ELLIPSIS.match(q)
    if ellipsis:
        x = next(g for g in ellipsis.groups() if g)
        return _substitute(previous, x, tagger)
    if REFERENCE.search(q) and len(q.split()) <= 14:
        stripped = ANAPHORIC_LEAD.sub("", q).strip(" ?.!,")
        if stripped and stripped != q.strip(" ?.!,"):
            combined = f"{previous.rstrip(' ?.!')} {stripped}?"
        else:  # "What are their outcomes?": keep the whole follow-up after the previous question
            combined = f"{previous.rstrip(' ?.!')}: {q[:1].lower()}{q[1:]}"
        return Resolution(combined, "reference", entities_of(tagger, combined))
    return Resolution(q, "new", entities_of(tagger, q))


def _substitute(previous: str, x: str, tagger: Tagger | None) -> Resolution:
    new = list(tagger.find(x)) if tagger else []
    old = list(tagger.find(previous)) if tagger else []
    if not new and CODE_NAME.match(x.strip()):
        # An unknown name shaped like a drug: it replaces the previous drug.
        replace = [m for m in old if m.kind == "drug"]
        if replace:
            target = replace[-1]
            text = previous[: target.start] + x.strip() + previous[target.end :]
            return Resolution(text, "ellipsis", entities_of(tagger, text))
    text = previous
    appended: list[str] = []
    for mention in new:
        present = list(tagger.find(text)) if tagger else []
        same = [m for m in present if m.kind == mention.kind] or [
            m for m in present if _group(m.kind) == _group(mention.kind)
        ]
        if same:
            target = same[-1]
            text = text[: target.start] + mention.text + text[target.end :]
        else:
            appended.append(mention.text)
    if not new:
        appended.append(x.strip())
    if appended:
        text = f"{text.rstrip(' ?.!')} ({', '.join(appended)})?"
    return Resolution(text, "ellipsis", entities_of(tagger, text))
