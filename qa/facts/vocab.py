"""The curated vocabulary (drugs, classes, targets, conditions ...) and a matcher that finds it in text."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from qa.settings import MAX_QUESTION_CHARS

VOCABULARY_FILE = "vocabulary.json"


def packaged_vocabulary_bytes() -> bytes:
    """The curated vocabulary shipped inside the package (qa/data/vocabulary.json), installed or not."""
    return resources.files("qa.data").joinpath(VOCABULARY_FILE).read_bytes()


def merge_vocabulary(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` added: new entries appended, list fields of shared entries unioned."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        have = out.get(key)
        if isinstance(have, dict) and isinstance(value, dict):
            for name, entry in value.items():
                old = have.get(name)
                if isinstance(old, dict) and isinstance(entry, dict):
                    for field_name, v in entry.items():
                        if isinstance(old.get(field_name), list) and isinstance(v, list):
                            old[field_name] += [x for x in v if x not in old[field_name]]
                        else:
                            old.setdefault(field_name, v)
                elif isinstance(old, list) and isinstance(entry, list):
                    old += [x for x in entry if x not in old]
                elif old is None:
                    have[name] = copy.deepcopy(entry)
        elif isinstance(have, list) and isinstance(value, list):
            have += [x for x in value if x not in have]
        elif have is None:
            out[key] = copy.deepcopy(value)
    return out


DASHES = "\u2010\u2011\u2012\u2013\u2014\u2212"
_DASH_CLASS = DASHES + r"\-"
_SEP = f"[\\s{_DASH_CLASS}]*"
_WORD = r"[A-Za-z0-9α-ωΑ-Ω]"


_KEY_DROPS = re.compile(rf"[\s{_DASH_CLASS}_]+")


def norm_key(text: str) -> str:
    """Comparison key: lower case, dashes, spaces and underscores removed ("TLR-9" == "TLR9")."""
    return _KEY_DROPS.sub("", text.lower())


@lru_cache(maxsize=1 << 16)
def _alias_pattern(alias: str) -> str:
    """A regex for ``alias`` tolerant of dash/space variants and a plural ending."""
    parts = re.findall(r"[A-Za-z0-9α-ωΑ-Ω]+|[^\sA-Za-z0-9α-ωΑ-Ω]", alias)
    out: list[str] = []
    prev_alnum = False
    for part in parts:
        alnum = bool(re.match(_WORD, part))
        if part in DASHES or part == "-":
            continue
        if out:
            out.append(_SEP if (alnum and prev_alnum) else r"\s*")
        out.append(re.escape(part))
        prev_alnum = alnum
    pattern = "".join(out)
    if alias[-1:].isalpha() and len(alias) > 3:
        pattern = pattern[:-1] + "(?:y|ies)" if alias.endswith("y") else pattern + "(?:e?s)?"
    return pattern


def _by_first_char(patterns: list[str]) -> str:
    """One alternation of ``patterns`` (order kept within each first character), grouped behind a one-character
    lookahead: at a spot the engine tries only the aliases that can start there, not all of them.

    The same matches as the flat alternation, but a spot costs one look at its first character rather than a
    try of every alias, which is what keeps scanning a question cheap as the vocabulary grows.
    """
    groups: dict[str, tuple[str, list[str]]] = {}
    for pattern in patterns:  # each starts with one (possibly escaped) literal character
        first = pattern[:2] if pattern.startswith("\\") else pattern[:1]
        groups.setdefault(first.lower(), (first, []))[1].append(pattern)
    return "|".join(f"(?={first})(?:{'|'.join(group)})" for first, group in groups.values())


MATCH_TEMPLATE = "(?<![A-Za-z0-9α-ωΑ-Ω])(?:{})(?![A-Za-z0-9α-ωΑ-Ω+])"  # an alias, as a whole word
_COMPILED_MATCHERS = 8  # vocabulary states whose compiled matcher a process keeps


@lru_cache(maxsize=_COMPILED_MATCHERS)
def compile_matcher(body: str) -> re.Pattern[str]:
    """The whole-word matcher of an alternation ``body``, compiled once per process and body.

    Compiling an alternation of a few thousand aliases takes a third of a second of pure-Python parsing;
    the same vocabulary states recur (the curated one, the one a build learned and then serves, a rebuild
    that learns the same names in the same order), so each is compiled once.
    """
    return re.compile(MATCH_TEMPLATE.format(body), re.IGNORECASE)


_MEMO_TEXT_CHARS = MAX_QUESTION_CHARS  # questions are memoized; document text is scanned once anyway
_MEMO_ENTRIES = 4096


_AGONIST_WORDS = re.compile(r"(?<!ant)agonis|activator|stimulat", re.IGNORECASE)
_INHIBIT_WORDS = re.compile(
    r"^anti-|inhibit|antagonist|blocker|blockade|\btrap\b|neutrali[sz]", re.IGNORECASE
)


def action_word(phrase: str) -> str | None:
    """The direction a class phrase states: 'inhibit' ('LAG-3 blockade'), 'agonist' ('CD40 agonist') or None."""
    if _AGONIST_WORDS.search(phrase):
        return "agonist"
    return "inhibit" if _INHIBIT_WORDS.search(phrase) else None


@dataclass(frozen=True, slots=True)  # many per sentence
class Mention:
    kind: str  # drug | class | target | condition | setting | status | designation | agency | outcome | cell
    name: str  # canonical name
    start: int
    end: int
    text: str


@dataclass
class DrugInfo:
    name: str
    aliases: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    source: str = "vocabulary"  # vocabulary | learned


@dataclass
class Entry:
    """A class, target, condition or other named thing: canonical name, synonyms and relations."""

    name: str
    synonyms: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    axis: str | None = None
    label: str | None = None
    action: str | None = None  # a class's direction on its targets: inhibit | agonist | antigen


KINDS = (
    "drug",
    "class",
    "target",
    "condition",
    "setting",
    "status",
    "designation",
    "agency",
    "outcome",
    "cell",
)
_GROUPS = {
    "class": "classes",
    "target": "targets",
    "condition": "conditions",
    "setting": "settings",
    "status": "statuses",
    "designation": "designations",
    "agency": "agencies",
    "outcome": "outcomes",
    "cell": "cell_types",
}
# When two kinds share a surface form, the earlier kind wins (a drug name beats a target symbol).
_PRIORITY = {k: i for i, k in enumerate(KINDS)}


def _entry(name: str, raw: Any) -> Entry:
    if isinstance(raw, list):
        return Entry(name, synonyms=list(raw))
    return Entry(
        name,
        synonyms=list(raw.get("synonyms", [])),
        parents=list(raw.get("parents", [])),
        targets=list(raw.get("targets", [])),
        axis=raw.get("axis"),
        label=raw.get("label"),
        action=raw.get("action"),
    )


class Vocabulary:
    """Canonical names and their surface forms; relations between drugs, classes and targets."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.raw = data
        self.common_words = set(data.get("common_words", []))
        self.roman: dict[str, int] = dict(data.get("phases", {}).get("roman", {"I": 1, "II": 2, "III": 3}))
        self.drugs: dict[str, DrugInfo] = {}
        for name, d in data.get("drugs", {}).items():
            self.drugs[name] = DrugInfo(
                name,
                list(d.get("aliases", [])),
                list(d.get("classes", [])),
                list(d.get("targets", [])),
                d.get("source", "vocabulary"),
            )
        self.entries: dict[str, dict[str, Entry]] = {
            kind: {n: _entry(n, raw) for n, raw in data.get(group, {}).items()}
            for kind, group in _GROUPS.items()
        }
        self._memo_: _VocabularyMemo | None = None
        # the comparison keys (less the last letter) of names learned since this object was made, in order:
        # a text whose norm_key holds none of them is matched as before (qa.facts.scan)
        self.names_added: list[str] = []

    @classmethod
    def load(cls, path: Path | None = None) -> Vocabulary:
        """The vocabulary file at ``path``, or the packaged curated one."""
        data = Path(path).read_bytes() if path else packaged_vocabulary_bytes()
        return cls(json.loads(data.decode("utf-8")))

    @classmethod
    def for_corpus(cls, corpus_root: Path) -> Vocabulary:
        """The packaged vocabulary plus whatever the corpus folder's own vocabulary.json adds."""
        base = json.loads(packaged_vocabulary_bytes().decode("utf-8"))
        own = Path(corpus_root) / VOCABULARY_FILE
        if own.exists():
            base = merge_vocabulary(base, json.loads(own.read_text(encoding="utf-8")))
        return cls(base)

    def copy(self) -> Vocabulary:
        return Vocabulary(copy.deepcopy(self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.raw)
        data["drugs"] = {
            n: {k: v for k, v in asdict(d).items() if k != "name"} for n, d in self.drugs.items()
        }
        for kind, group in _GROUPS.items():
            data[group] = {
                n: {k: v for k, v in asdict(e).items() if k != "name" and v not in (None, [])}
                for n, e in self.entries[kind].items()
            }
        return data

    # --- accessors -------------------------------------------------------
    @property
    def classes(self) -> dict[str, Entry]:
        return self.entries["class"]

    @property
    def targets(self) -> dict[str, Entry]:
        return self.entries["target"]

    @property
    def conditions(self) -> dict[str, Entry]:
        return self.entries["condition"]

    def surface_forms(self) -> dict[str, list[tuple[str, str]]]:
        """normalized key -> [(kind, canonical)], every alias and synonym, canonical names included."""
        forms: dict[str, list[tuple[str, str]]] = {}

        def add(kind: str, canonical: str, surface: str) -> None:
            slot = forms.setdefault(norm_key(surface), [])
            if (kind, canonical) not in slot:
                slot.append((kind, canonical))

        for d in self.drugs.values():
            for s in [d.name, *d.aliases]:
                add("drug", d.name, s)
        for kind, entries in self.entries.items():
            for e in entries.values():
                for s in [e.name, *e.synonyms] if kind in ("class", "target", "condition") else e.synonyms:
                    add(kind, e.name, s)
        for slot in forms.values():
            slot.sort(key=lambda kc: _PRIORITY[kc[0]])
        return forms

    def _surfaces(self) -> list[str]:
        surfaces: list[str] = []
        for d in self.drugs.values():
            surfaces += [d.name, *d.aliases]
        for kind, entries in self.entries.items():
            for e in entries.values():
                surfaces += [e.name, *e.synonyms] if kind in ("class", "target", "condition") else e.synonyms
        return surfaces

    def matched_surfaces(self) -> list[str]:
        """Every name the matcher looks for, longest first (so the longest alias wins at a spot)."""
        return sorted({s for s in self._surfaces() if s.strip()}, key=lambda s: (-len(s), s))

    @property
    def _memo(self) -> _VocabularyMemo:
        """What this vocabulary's names imply (the matcher, relation memos), worked out on first use and
        dropped whenever a name is added."""
        if self._memo_ is None:
            self._memo_ = _VocabularyMemo(self)
        return self._memo_

    @property
    def _matcher(self) -> tuple[re.Pattern[str], dict[str, list[tuple[str, str]]], dict[str, str]]:
        memo = self._memo
        return memo.pattern, memo.forms, memo.originals

    def lookup(self, surface: str) -> list[tuple[str, str]]:
        """(kind, canonical) pairs a surface form names, best first; plural endings tolerated."""
        forms = self._memo.forms  # no compiled matcher needed: learning looks names up between scans
        key = norm_key(surface)
        for candidate in (key, key[:-1] if key.endswith("s") else "", key[:-2] if key.endswith("es") else ""):
            if candidate and candidate in forms:
                return forms[candidate]
        if key.endswith("ies") and key[:-3] + "y" in forms:
            return forms[key[:-3] + "y"]
        return []

    def find(
        self, text: str, start: int = 0, end: int | None = None, kinds: set[str] | None = None
    ) -> list[Mention]:
        """Every vocabulary mention in ``text[start:end]`` (offsets into ``text``), longest first at a spot."""
        if start or end is not None or len(text) > _MEMO_TEXT_CHARS:
            return self._find(text, start, end, kinds)
        key = (text, frozenset(kinds) if kinds is not None else None)
        memo = self._memo.found
        found = memo.get(key)
        if found is None:  # one question is scanned by resolution, expansion and the trial filter alike
            if len(memo) >= _MEMO_ENTRIES:
                memo.clear()
            found = memo[key] = tuple(self._find(text, start, end, kinds))
        return list(found)

    def _find(
        self, text: str, start: int = 0, end: int | None = None, kinds: set[str] | None = None
    ) -> list[Mention]:
        memo = self._memo
        pattern, originals = memo.pattern, memo.originals
        out: list[Mention] = []
        for m in pattern.finditer(text, start, len(text) if end is None else end):
            surface = m.group(0)
            key = norm_key(surface)
            exact = originals.get(key) or originals.get(key[:-1])
            if exact is not None and surface.rstrip("s") != exact.rstrip("s"):
                continue  # "met" the verb is not MET the receptor
            hits = self.lookup(surface)
            if not hits:
                continue
            kind, name = hits[0]
            if kinds is not None:
                chosen = next(((k, n) for k, n in hits if k in kinds), None)
                if chosen is None:
                    continue
                kind, name = chosen
            out.append(Mention(kind, name, m.start(), m.end(), surface))
        return out

    def resolve(self, surface: str, kind: str | None = None) -> str | None:
        for k, name in self.lookup(surface):
            if kind is None or k == kind:
                return name
        return None

    # --- relations -------------------------------------------------------
    def class_ancestors(self, name: str) -> set[str]:
        out: set[str] = set()
        stack = [name]
        while stack:
            c = stack.pop()
            if c in out:
                continue
            out.add(c)
            entry = self.classes.get(c)
            stack.extend(entry.parents if entry else [])
        return out

    def class_descendants(self, name: str) -> set[str]:
        memo = self._memo.descendants
        found = memo.get(name)
        if found is None:
            found = memo[name] = frozenset(
                {c for c in self.classes if name in self.class_ancestors(c)} | {name}
            )
        return set(found)

    def drug_classes(self, drug: str) -> list[str]:
        info = self.drugs.get(drug)
        out: dict[str, None] = {}
        for c in info.classes if info else []:
            for a in [c, *sorted(self.class_ancestors(c) - {c})]:
                out.setdefault(a, None)
        return list(out)

    def class_action(self, name: str) -> str | None:
        """A class's direction on its targets: its own or an ancestor's 'action', else read from its name."""
        chain = [name, *sorted(self.class_ancestors(name) - {name})]
        for c in chain:
            entry = self.classes.get(c)
            if entry is not None and entry.action:
                return entry.action
        return next((a for c in chain if (a := action_word(c))), None)

    def drug_actions(self, drug: str, targets: set[str]) -> set[str | None]:
        """The directions in which ``drug`` acts on any of ``targets`` (None: the vocabulary does not say)."""
        info = self.drugs.get(drug)
        if info is None:
            return set()
        out = {self.class_action(c) for c in info.classes if targets & set(self.class_targets(c))}
        if out or not targets & set(info.targets):
            return out
        # a target of the drug's own: its classes say how it acts (a vaccine against PD-L1 is no PD-L1 inhibitor)
        return {self.class_action(c) for c in info.classes} - {None} or {None}

    def outcome_ancestors(self, name: str) -> set[str]:
        """An outcome measure and the broader ones it is a kind of ('mOS' -> {'mOS', 'OS'})."""
        out: set[str] = set()
        stack = [name]
        while stack:
            o = stack.pop()
            if o not in out:
                out.add(o)
                entry = self.entries["outcome"].get(o)
                stack.extend(entry.parents if entry else [])
        return out

    def class_targets(self, name: str) -> list[str]:
        entry = self.classes.get(name)
        return list(entry.targets) if entry else []

    def drug_targets(self, drug: str) -> list[str]:
        info = self.drugs.get(drug)
        out: dict[str, None] = dict.fromkeys(info.targets if info else [])
        for c in info.classes if info else []:
            out.update(dict.fromkeys(self.class_targets(c)))
        return list(out)

    def class_members(self, name: str) -> set[str]:
        """Drugs in ``name`` or any of its sub-classes."""
        family = self.class_descendants(name)
        return {d.name for d in self.drugs.values() if family & set(d.classes)}

    def axis(self, target: str) -> set[str]:
        """Targets acting on one ligand/receptor pair with ``target`` (PD-1 and PD-L1); itself included."""
        entry = self.targets.get(target)
        if entry is None or not entry.axis:
            return {target}
        memo = self._memo.axes
        found = memo.get(entry.axis)
        if found is None:
            found = memo[entry.axis] = frozenset(t for t, e in self.targets.items() if e.axis == entry.axis)
        return set(found)

    def condition_ancestors(self, name: str) -> set[str]:
        out: set[str] = set()
        stack = [name]
        while stack:
            c = stack.pop()
            if c not in out:
                out.add(c)
                entry = self.conditions.get(c)
                stack.extend(entry.parents if entry else [])
        return out

    # --- growth (learning) ------------------------------------------------
    def ensure_drug(self, name: str) -> DrugInfo:
        existing = self.resolve(name, "drug")
        if existing:
            return self.drugs[existing]
        info = DrugInfo(name, source="learned")
        self.drugs[name] = info
        self._reset(name)
        return info

    def add_alias(self, drug: str, alias: str) -> bool:
        info = self.drugs[drug]
        if norm_key(alias) in {norm_key(a) for a in [info.name, *info.aliases]}:
            return False
        info.aliases.append(alias)
        self._reset(alias)
        return True

    def add_class(self, drug: str, cls: str) -> bool:
        info = self.drugs[drug]
        if cls in self.drug_classes(drug):
            return False
        info.classes.append(cls)
        return True

    def add_target(self, drug: str, target: str) -> bool:
        info = self.drugs[drug]
        if target in self.drug_targets(drug):
            return False
        info.targets.append(target)
        return True

    def _reset(self, name: str) -> None:
        self._memo_ = None
        self.names_added.append(norm_key(name)[:-1])


class _VocabularyMemo:
    """Everything derived from one state of a vocabulary: its surface forms, the compiled matcher, and memos of
    questions scanned (one question is scanned by resolution, expansion and the trial filter alike), class
    descendants and target axes. Owned by the vocabulary, which drops it when it learns a name; each part is
    worked out on first use, so looking names up while learning never compiles a matcher."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.found: dict[tuple[str, frozenset[str] | None], tuple[Mention, ...]] = {}
        self.descendants: dict[str, frozenset[str]] = {}
        self.axes: dict[str, frozenset[str]] = {}

    @cached_property
    def forms(self) -> dict[str, list[tuple[str, str]]]:
        return self.vocab.surface_forms()

    @cached_property
    def originals(self) -> dict[str, str]:
        """key -> original spelling, for case-sensitive common words"""
        vocab = self.vocab
        return {norm_key(s): s for s in vocab._surfaces() if s in vocab.common_words}

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return compile_matcher(_by_first_char([_alias_pattern(s) for s in self.vocab.matched_surfaces()]))
