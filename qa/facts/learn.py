"""Learn what the documents say about their drugs: class members, aliases, targets, spelling variants.

"the TLR9 agonist SD-101", "another TLR9 agonist, CMP-001", "CpG (toll-like receptor-9 agonist, ...)",
"Bempegaldes (NKTR-214) is a CD122 agonist", "drugs for LAG-3 include relatlimab (BMS-986916), ...".
A new paper thus teaches the vocabulary new class members without anyone editing vocabulary.json.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qa.documents import Document
from qa.facts.scan import Scans
from qa.facts.vocab import Mention, Vocabulary, norm_key

# Sponsor code names: SD-101, CMP-001, PLX3397, BGB-A1217, Sym022, IO102/IO103, LN-145-S1, N-803.
CODE_NAME = re.compile(
    r"(?<![\w-])[A-Z][A-Za-z]{0,7}(?:-[A-Z]{1,3})?-?\d{2,7}[A-Za-z]?(?:-[A-Z]?\d{1,4})?(?:/[A-Z]{1,6}-?\d{2,7})?(?![\w-])"
)
# International nonproprietary names by their stems (WHO INN stem book).
INN_LIKE = re.compile(
    r"(?<![\w-])[A-Za-z][a-z]{2,}(?:mab|nib|cept|leukin|leucel|cel|mod|stat|parib|platin|taxel|rubicin|vec|sertib|fusp)(?![\w-])"
)
_NOT_NAMES = re.compile(r"^(?:NCT\d+|ESMO\d*|ASCO\d*|AACR\d*|SITC\d*|WCLC\d*|LBA\d*|CA\d+-\d+)$")
_STOP = {"the", "this", "these", "that", "drug", "agent", "therapy", "treatment", "recently", "currently"}
_ITEM_SPLIT = re.compile(r"\s*(?:,|;|\bor\b|\band\b)\s*")
_IS_A = re.compile(
    r"^\s*(?:\([^()]*\)\s*)?(?:,\s*(?:a|an|the)\s+|\s+(?:is|was|are)\s+(?:a|an|the)\s+)(?:[\w-]+\s+){0,4}$"
)
_TARGETING = re.compile(r"\b(?:that\s+targets?|targeting|against|directed\s+against)\s+(?:the\s+)?")
_NAME_PAREN = re.compile(r"(?<![\w-])([A-Z][a-z]{4,})\s*\(([^(),;]{2,40})\)")
_LIST_INTRO = re.compile(
    r"\b(?:drugs|agents|antibodies|inhibitors|candidates|therapies)\s+(?:for|against|targeting)\s+$",
    re.IGNORECASE,
)


@dataclass
class LearnedFact:
    drug: str
    relation: str  # class | alias | target | new_drug
    value: str
    pattern: str
    doc_id: str
    start: int
    end: int
    quote: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Learner:
    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.facts: list[LearnedFact] = []
        self._seen: set[tuple[str, str, str]] = set()

    # --- drug-like tokens ---------------------------------------------
    def drug_at(self, text: str, pos: int, mentions: list[Mention]) -> tuple[str, int, bool] | None:
        """(name, end, known) for a drug named at ``pos``: a vocabulary drug, or an unknown code name / INN."""
        for m in mentions:
            if m.start == pos and m.kind == "drug":
                return m.name, m.end, True
        for rx in (CODE_NAME, INN_LIKE):
            if (hit := rx.match(text, pos)) and self._unknown_token(hit.group(0)):
                return hit.group(0), hit.end(), False
        return None

    def _unknown_token(self, token: str) -> bool:
        return not _NOT_NAMES.match(token) and not self.vocab.lookup(token)

    def record(
        self, drug: str, relation: str, value: str, pattern: str, doc: Document, span: tuple[int, int]
    ) -> None:
        key = (norm_key(drug), relation, norm_key(value))
        if key in self._seen:
            return
        info = self.vocab.ensure_drug(drug)
        if info.source == "learned" and not any(f.drug == info.name for f in self.facts):
            self.facts.append(
                LearnedFact(
                    info.name, "new_drug", info.name, pattern, doc.id, *span, doc.text[span[0] : span[1]]
                )
            )
        changed = {
            "class": lambda: self.vocab.add_class(info.name, value),
            "alias": lambda: self.vocab.add_alias(info.name, value),
            "target": lambda: self.vocab.add_target(info.name, value),
        }[relation]()
        self._seen.add(key)
        # Confirmations of what the vocabulary already knew are kept too: they are evidence.
        quote = doc.text[span[0] : span[1]]
        self.facts.append(
            LearnedFact(
                info.name, relation, value, pattern + ("" if changed else " (confirms)"), doc.id, *span, quote
            )
        )

    # --- patterns --------------------------------------------------------
    def sentence(self, doc: Document, start: int, end: int, mentions: list[Mention] | None = None) -> None:
        text = doc.text
        mentions = self.vocab.find(text, start, end) if mentions is None else mentions
        span = (start, end)
        for m in mentions:
            if m.kind == "class":
                self._class_then_drugs(doc, m, mentions, span, end)
            elif m.kind == "target":
                self._drugs_for_target(doc, m, mentions, span, end)
        drug_starts = {m.start for m in mentions if m.kind == "drug"}
        drug_starts |= {h.start() for rx in (CODE_NAME, INN_LIKE) for h in rx.finditer(text, start, end)}
        for pos in sorted(drug_starts):
            found = self.drug_at(text, pos, mentions)
            if found is None:
                continue
            name, d_end, known = found
            self._drug_paren(doc, name, pos, d_end, known, mentions, span)
            if known or self._has_class_after(text, d_end, mentions, end):
                self._drug_is_a(doc, name, d_end, mentions, span, end)
                self._drug_targets(doc, name, d_end, mentions, span, end)
        for hit in _NAME_PAREN.finditer(text, start, end):
            name = hit.group(1)
            resolved = self.vocab.resolve(hit.group(2).strip(), "drug")
            if resolved and name.lower() not in _STOP and not self.vocab.lookup(name):
                self.record(resolved, "alias", name, "NAME (DRUG)", doc, span)

    def _drug_list(self, text: str, pos: int, end: int, mentions: list[Mention]) -> list[str]:
        names: list[str] = []
        while pos < end:
            found = self.drug_at(text, pos, mentions)
            if found is None:
                break
            names.append(found[0])
            pos = found[1]
            paren = re.compile(r"\s*\([^()]{0,60}\)").match(text, pos, end)
            pos = paren.end() if paren else pos
            sep = re.compile(r"\s*(?:,\s*(?:and\s+|or\s+)?|and\s+|or\s+)").match(text, pos, end)
            if not sep or sep.end() == pos:
                break
            pos = sep.end()
        return names

    def _class_then_drugs(
        self, doc: Document, c: Mention, mentions: list[Mention], span: tuple[int, int], end: int
    ) -> None:
        lead = re.compile(r"\s*(?:,\s*|\(\s*)?(?:the\s+|namely\s+|including\s+|such as\s+)?").match(
            doc.text, c.end, end
        )
        pos = lead.end() if lead else c.end
        for name in self._drug_list(doc.text, pos, end, mentions):
            self.record(name, "class", c.name, "CLASS DRUG", doc, span)

    def _drugs_for_target(
        self, doc: Document, t: Mention, mentions: list[Mention], span: tuple[int, int], end: int
    ) -> None:
        if not _LIST_INTRO.search(doc.text[max(span[0], t.start - 40) : t.start]):
            return
        m = re.compile(r"(?:\s+[\w-]+){0,2}?\s+include\s+").match(doc.text, t.end, end)
        if not m:
            return
        cls = next(
            (c for c, e in self.vocab.classes.items() if e.targets == [t.name] and c.startswith("anti-")),
            None,
        )
        for name in self._drug_list(doc.text, m.end(), end, mentions):
            self.record(name, "target", t.name, "drugs for TARGET include DRUG", doc, span)
            if cls:
                self.record(name, "class", cls, "drugs for TARGET include DRUG", doc, span)

    def _drug_paren(
        self,
        doc: Document,
        name: str,
        start: int,
        d_end: int,
        known: bool,
        mentions: list[Mention],
        span: tuple[int, int],
    ) -> None:
        text = doc.text
        paren = re.compile(r"\s*\(([^()]{1,100})\)").match(text, d_end, span[1])
        if not paren:
            return
        inner_start = paren.start(1)
        del inner_start
        for raw in re.findall(r"[^,;]+", paren.group(1)):
            item = re.sub(r"^\s*(?:or\s+|and\s+|an?\s+|the\s+)", "", raw).strip()
            if not item or _NOT_NAMES.match(item):
                continue
            hits = self.vocab.lookup(item) or _described_class(self.vocab, item)
            if hits and hits[0][0] == "class":
                if known or CODE_NAME.fullmatch(name) or INN_LIKE.fullmatch(name):
                    self.record(name, "class", hits[0][1], "DRUG (CLASS)", doc, span)
            elif hits and hits[0][0] == "drug":
                if known and hits[0][1] != name:
                    continue  # two known drugs side by side: not an alias pair
                if not known:
                    self.record(hits[0][1], "alias", name, "CODE (DRUG)", doc, span)
            elif (
                not hits
                and known
                and (CODE_NAME.fullmatch(item) or INN_LIKE.fullmatch(item) or _single_name(item))
            ):
                self.record(name, "alias", item, "DRUG (ALIAS)", doc, span)

    def _has_class_after(self, text: str, pos: int, mentions: list[Mention], end: int) -> bool:
        return any(
            m.kind == "class" and pos <= m.start <= pos + 90 and _IS_A.match(text[pos : m.start])
            for m in mentions
        )

    def _drug_is_a(
        self, doc: Document, name: str, d_end: int, mentions: list[Mention], span: tuple[int, int], end: int
    ) -> None:
        for m in mentions:
            if (
                m.kind == "class"
                and d_end <= m.start <= d_end + 90
                and _IS_A.match(doc.text[d_end : m.start])
            ):
                self.record(name, "class", m.name, "DRUG is a CLASS", doc, span)
                return

    def _drug_targets(
        self, doc: Document, name: str, d_end: int, mentions: list[Mention], span: tuple[int, int], end: int
    ) -> None:
        text = doc.text
        window_end = min(end, d_end + 110)
        clause_end = re.compile(r"[;]|\)\s*,").search(text, d_end, window_end)
        window_end = clause_end.start() if clause_end else window_end
        trig = _TARGETING.search(text, d_end, window_end)
        if not trig or any(m.kind == "drug" and d_end < m.start < trig.start() for m in mentions):
            return
        pos = trig.end()
        for m in sorted(
            (m for m in mentions if m.start >= pos and m.end <= window_end), key=lambda m: m.start
        ):
            gap = text[pos : m.start]
            if m.kind != "target" or not re.fullmatch(r"\s*(?:,|and|or|/)?\s*(?:the\s+)?", gap):
                break
            self.record(name, "target", m.name, "DRUG that targets TARGET", doc, span)
            pos = m.end

    # --- spelling variants ---------------------------------------------
    def spelling(self, doc: Document, sentences: list[tuple[int, int]]) -> None:
        known = [(norm_key(s), d.name) for d in self.vocab.drugs.values() for s in [d.name, *d.aliases]]
        codes: dict[tuple[str, str], set[str]] | None = None  # made at the first code name met
        for start, end in sentences:
            for rx in (INN_LIKE, CODE_NAME):
                for hit in rx.finditer(doc.text, start, end):
                    token = hit.group(0)
                    if not self._unknown_token(token):
                        continue
                    if rx is CODE_NAME:
                        codes = codes if codes is not None else _code_index(known)
                        target = _nearest_code(token, codes)
                    else:
                        target = _nearest(token, known)
                    if target:
                        self.record(target, "alias", token, "spelling variant", doc, (start, end))


def _described_class(vocab: Vocabulary, item: str) -> list[tuple[str, str]]:
    """'novel STING agonist': a class named at the end of a short description."""
    for m in vocab.find(item, kinds={"class"}):
        if m.end == len(item) and re.fullmatch(r"(?:[\w-]+\s+){0,3}", item[: m.start]):
            return [("class", m.name)]
    return []


def _single_name(item: str) -> bool:
    return bool(re.fullmatch(r"[A-Z][a-z]{3,}|[A-Z][A-Za-z]{1,5}", item)) and item.lower() not in _STOP


_NOT_DIGIT, _DIGIT = re.compile(r"\D"), re.compile(r"\d")


def _code_key(key: str) -> tuple[str, str]:
    """A code name's digits, and its letters in sorted order: what a transposed spelling keeps."""
    return _NOT_DIGIT.sub("", key), "".join(sorted(_DIGIT.sub("", key)))


def _code_index(known: list[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """The known drugs by the code key of each of their names (made once a document, not once a token)."""
    index: dict[tuple[str, str], set[str]] = {}
    for k, n in known:
        index.setdefault(_code_key(k), set()).add(n)
    return index


def _nearest_code(token: str, codes: dict[tuple[str, str], set[str]]) -> str | None:
    """The one known drug the code name ``token`` is a misspelling of, if any: same digits, same letters in
    another order (NTRK-214 for NKTR-214)."""
    hits = codes.get(_code_key(norm_key(token)), set())
    return next(iter(hits)) if len(hits) == 1 else None


def _nearest(token: str, known: list[tuple[str, str]]) -> str | None:
    """The one known drug the INN-shaped ``token`` is a misspelling of, if any: same stem ending and initial,
    and clearly closer to one drug than to any other."""
    key = norm_key(token)
    scored = sorted(
        (
            (difflib.SequenceMatcher(None, key, k).ratio(), n)
            for k, n in known
            if k.isalpha() and len(k) >= 8 and k[0] == key[0] and k[-5:] == key[-5:]
        ),
        reverse=True,
    )
    if not scored or scored[0][0] < 0.74:
        return None
    if len(scored) > 1 and scored[1][1] != scored[0][1] and scored[0][0] - scored[1][0] < 0.05:
        return None
    return scored[0][1]


def grow(vocab: Vocabulary, documents: Sequence[Document], scans: Scans) -> list[LearnedFact]:
    """Grow ``vocab`` in place by what ``documents`` state; the statements it learned from.

    ``scans`` (over ``vocab``) splits each sentence once and keeps its mentions: in the second pass a
    sentence whose scan is still current is not read again (nothing it holds has changed, so it would learn
    nothing new), and extraction afterwards reuses the scans the same way.
    """
    learner = _Learner(vocab)
    for second in (False, True):  # a second pass sees aliases learned in the first ("Bempegaldes" -> ...)
        for doc in documents:
            for scan in scans.sentences(doc):
                if second and scans.current(doc, scan):
                    continue
                learner.sentence(doc, scan.start, scan.end, scans.mentions(doc, scan))
    for doc in documents:
        learner.spelling(doc, [(s.start, s.end) for s in scans.sentences(doc)])
    return learner.facts
