"""Question expansion by a lexicon: abbreviations the documents define, both ways, and curated lay terms."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qa.index.keyword import stem, tokenize

if TYPE_CHECKING:
    from qa.chunking import Passage
    from qa.corpus import Corpus

LEXICON_FILE = "lexicon.json"
LAY_TERMS = Path(__file__).parent / "data" / "lay_terms.json"
MAX_WORDS = 8  # longest phrase looked up in a question

# "myeloid-derived suppressor cells (MDSCs)": an abbreviation in brackets after its long form; also first
# in a bracket that goes on ("objective response rate (ORR; primary endpoint)", "(OS, the primary ...").
_BRACKETED = re.compile(r"\(([A-Za-z][A-Za-z0-9\-+/αβγ]{1,11})(\)|[;,]\s)")
# Figure glossaries: "MDSC, myeloid-derived suppressor cell; TAM, tumor-associated macrophage."
_GLOSSARY = re.compile(r"(?:^|[;.]\s*)([A-Z][A-Za-z0-9\-+]{1,10}),\s+([a-z][a-z0-9\- ]{3,80}?)(?=;|\.\s|\.$)")
_WORD = re.compile(r"[a-z0-9α-ω]+(?:[-+][a-z0-9α-ω]+)*\+?")


def _norm_word(w: str) -> str:
    w = w.rstrip("+")
    return w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w


def phrase_key(text: str) -> tuple[str, ...]:
    """Lower-cased, stemmed words: 'Regulatory T cells' and 'regulatory T cell' meet, and so do 'come back'
    and 'coming back'."""
    return tuple(stem(_norm_word(w)) for w in _WORD.findall(text.lower()))


def _abbr_key(abbr: str) -> str:
    """'MDSCs' -> 'MDSC', 'TAMs' -> 'TAM' (a plural s after capitals); case kept otherwise."""
    return abbr[:-1] if len(abbr) > 2 and abbr.endswith("s") and abbr[-2].isupper() else abbr


def long_form(before: str, abbr: str) -> str | None:
    """The long form an abbreviation stands for, from the words before its bracket (Schwartz and Hearst
    2003: the abbreviation's letters appear in order in the long form, the first one starting a word)."""
    letters = [c.lower() for c in _abbr_key(abbr) if c.isalnum()]
    if len(letters) < 2 or not any(c.isalpha() for c in letters):
        return None
    words = before.split()[-min(len(letters) + 5, 2 * len(letters)) :]
    text = " ".join(words)
    i, j = len(letters) - 1, len(text) - 1
    while i >= 0:
        c = letters[i]
        while j >= 0 and (text[j].lower() != c or (i == 0 and j > 0 and text[j - 1].isalnum())):
            j -= 1
        if j < 0:
            return None
        i, j = i - 1, j - 1
    start = text.rfind(" ", 0, j + 1) + 1
    found = text[start:].strip(" ,;:(")
    if (
        len(found) <= len(abbr)
        or not found[0].isalnum()
        or len(found.split()) > len(letters) + 2
        or any(c in found for c in "()[]")  # "Invitrogen), PE/Cy7-conjugated anti-CD11c": a bracket crossed
    ):
        return None
    return found


def learn_abbreviations(texts: Iterable[str]) -> dict[str, list[str]]:
    """Abbreviation -> long forms defined in ``texts`` ("long form (ABBR)" and "ABBR, long form;")."""
    found: dict[str, dict[str, None]] = {}
    for text in texts:
        for m in _BRACKETED.finditer(text):
            abbr = m.group(1)
            if not any(c.isupper() for c in abbr) or (m.group(2) != ")" and sum(map(str.isupper, abbr)) < 2):
                continue
            lf = long_form(text[max(0, m.start() - 200) : m.start()], abbr)
            if lf:
                found.setdefault(_abbr_key(abbr), {})[lf] = None
        for m in _GLOSSARY.finditer(text):
            abbr, lf = m.group(1), m.group(2).strip()
            if sum(c.isupper() for c in abbr) >= 2 and long_form(lf, abbr) == lf:
                found.setdefault(_abbr_key(abbr), {})[lf] = None
    return {a: list(forms) for a, forms in sorted(found.items())}


@dataclass
class Lexicon:
    """Phrases of a question and what they expand to; :meth:`expand` is what retrieval calls."""

    abbreviations: dict[str, list[str]] = field(default_factory=dict)  # MDSC -> [myeloid-derived ...]
    lay: dict[tuple[str, ...], list[str]] = field(default_factory=dict)  # phrase key -> technical terms
    _long: dict[tuple[str, ...], list[str]] = field(default_factory=dict, repr=False)  # long form -> abbrs

    def __post_init__(self) -> None:
        for abbr, forms in self.abbreviations.items():
            for lf in forms:
                self._long.setdefault(phrase_key(lf), []).append(abbr)

    @classmethod
    def learn(cls, texts: Iterable[str], *, lay_terms: Path | None = LAY_TERMS) -> Lexicon:
        return cls(learn_abbreviations(texts), read_lay_terms(lay_terms) if lay_terms else {})

    @classmethod
    def for_index(cls, folder: Path, texts: Iterable[str]) -> Lexicon:
        """The index's learned lexicon (lexicon.json), learned from ``texts`` for an index built without."""
        path = Path(folder) / LEXICON_FILE
        lay = read_lay_terms(LAY_TERMS)
        if path.exists():
            return cls(json.loads(path.read_text(encoding="utf-8"))["abbreviations"], lay)
        return cls(learn_abbreviations(texts), lay)

    def expand(self, question: str, *, long_forms: bool = True, abbreviations: bool = True) -> list[str]:
        """Extra keyword terms: long forms of the abbreviations asked, abbreviations of the long forms asked
        and technical terms of lay phrases (with their abbreviations in turn)."""
        terms: dict[str, None] = {}
        asks = re.findall(r"[A-Za-z][A-Za-z0-9\-+]{1,11}", question) if long_forms and abbreviations else []
        for raw in asks:
            for lf in self.abbreviations.get(_abbr_key(raw.rstrip("+")), [])[:1]:
                terms.setdefault(lf, None)
        words = phrase_key(question)
        for n in range(min(MAX_WORDS, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                key = words[i : i + n]
                for abbr in self._long.get(key, []) if abbreviations else []:
                    terms.setdefault(abbr, None)
                for term in self.lay.get(key, []):
                    terms.setdefault(term, None)
                    for abbr in self._long.get(phrase_key(term), []) if abbreviations else []:
                        terms.setdefault(abbr, None)
        asked, asked_tokens = question.lower(), set(tokenize(question))
        # a term the question already says in its own spelling ("tumour" for "tumor") adds nothing
        return [t for t in terms if t.lower() not in asked and not set(tokenize(t)) <= asked_tokens]

    def lay_phrases(self, question: str) -> list[tuple[str, list[str]]]:
        """The curated lay phrases a question uses, each with the technical terms it stands for:
        ("connective tissue cells", ["fibroblasts", ...]). Phrases may overlap; longest first."""
        words, written = phrase_key(question), _WORD.findall(question.lower())
        found: list[tuple[str, list[str]]] = []
        for n in range(min(MAX_WORDS, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                terms = self.lay.get(words[i : i + n])
                if terms:
                    found.append((" ".join(written[i : i + n]), terms))
        return found


def read_lay_terms(path: Path) -> dict[tuple[str, ...], list[str]]:
    entries = json.loads(Path(path).read_text(encoding="utf-8"))["entries"]
    out: dict[tuple[str, ...], list[str]] = {}
    for e in entries:
        for phrase in e["lay"]:
            out.setdefault(phrase_key(phrase), []).extend(e["terms"])
    return out


def lexicon_build_step(work: Path, corpus: Corpus, passages: Sequence[Passage]) -> None:
    """Index-time step: the abbreviations the corpus defines, written to lexicon.json."""
    abbreviations = learn_abbreviations(d.text for d in corpus.documents)  # one at a time
    (work / LEXICON_FILE).write_text(json.dumps({"abbreviations": abbreviations}, indent=1), encoding="utf-8")
