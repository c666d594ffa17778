"""The topic of a question: a vocabulary entity it is about, else its head noun phrase by question shape."""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.facts.vocab import Mention
from qa.followup.state import Topic

AUX = r"(?:do|does|did|can|could|might|may|would|will|should|is|are|was|were|has|have|had|must)(?:n['’]?t)?"
# Where the subject starts, by question shape; the subject runs to the verb (or the end).
_SHAPES = [
    re.compile(
        r"^(?:(?:please|can you|could you)\s+)?(?:tell me(?:\s+(?:more|a bit|something))?\s+about|"
        r"explain|describe|define|summari[sz]e|what\s+(?:is|are)\s+known\s+about|what\s+about)\s+(?P<np>.+)$",
        re.I,
    ),
    re.compile(r"^(?:what|who)\s+(?:is|are|was|were)\s+(?P<np>.+)$", re.I),
    re.compile(rf"^(?:how|why|when|where|what|in\s+what\s+way)\s+{AUX}\s+(?P<np>.+)$", re.I),
    re.compile(rf"^(?:which|what)\s+(?P<np>.+?)\s+(?:{AUX}|been|\w+ed)\b.*$", re.I),
    re.compile(rf"^{AUX}\s+(?P<np>.+)$", re.I),
]
# Words that end a noun phrase: verbs people use in these questions, prepositions, adverbs.
_STOP = re.compile(
    r"^(?:in|on|at|to|for|with|by|from|into|via|through|against|during|after|before|than|as|and|or|but|"
    r"that|which|who|whose|so|not|also|still|been|being|be|do|does|did|have|has|had|work|works|used|"
    r"use|affect|affects|cause|causes|help|helps|lead|leads|make|makes|play|plays|suppress|suppresses|"
    r"target|targets|induce|induces|block|blocks|improve|improves|reduce|reduces|increase|increases|"
    r"promote|promotes|inhibit|inhibits|activate|activates|differ|differs|compare|mean|means|relate|"
    r"interact|contribute|fail|remain|become|get|linked|associated|important|hard|difficult|"
    r"effective|useful|so|more|less|better|worse|\w+ly)$",
    re.I,
)
_GENERIC = re.compile(
    r"^(?:the\s+)?(?:trials?|stud(?:y|ies)|drugs?|agents?|patients?|papers?|documents?|authors?|"
    r"results?|data|ones?|kinds?|types?|examples?|approaches?|strateg(?:y|ies)|ways?|options?|"
    r"it|they|them|this|that|these|those)$",
    re.I,
)
PRONOUN = re.compile(r"\b(?:them|they|it|its|their|those|these)\b", re.I)
_MAX_WORDS = 6


def head_phrase(question: str) -> str | None:
    """The noun phrase a question is about by its shape ("How can nanomaterials target X" -> "nanomaterials")."""
    q = question.strip().rstrip("?.! ")
    for shape in _SHAPES:
        m = shape.match(q)
        if not m:
            continue
        words: list[str] = []
        for word in m.group("np").split():
            bare = word.strip(",;:")
            if words and (_STOP.match(bare) or bare.lower() in ("the", "a", "an")):
                break
            if not words and _STOP.match(bare) and bare.lower() not in ("the",):
                break
            words.append(bare)
            if word.endswith((",", ";", ":")) or len(words) >= _MAX_WORDS:
                break
        phrase = re.sub(
            r"^(?:(?:the|a|an|any|some|all|each|every|such|ones|of)\s+)+", "", " ".join(words), flags=re.I
        )
        if phrase and not _GENERIC.match(phrase) and not PRONOUN.fullmatch(phrase):
            return phrase
        return None
    return None


_RELATION_PREPOSITIONS = ("against", "for", "on", "in", "of", "to", "with", "into", "targeting")
_STOP_WORDS = re.compile(r"^(?:and|or|but|that|which|who|is|are|was|were|be|been|being|so|not)$")


def participle(verb: str) -> str:
    """'target' -> 'targeting', 'use' -> 'using', 'switch' -> 'switching'; a preposition stays as it is."""
    v = verb.lower()
    if v in _RELATION_PREPOSITIONS:
        return v
    if v.endswith("ing"):
        return v
    if v.endswith("ie"):
        return v[:-2] + "ying"
    if v.endswith("e") and not v.endswith(("ee", "ye")):
        return v[:-1] + "ing"
    return v + "ing"


def find_topic(
    question: str, mentions: Sequence[Mention], previous: Topic | None = None, typed: str | None = None
) -> Topic | None:
    """The topic of ``question`` (resolved); ``typed``: the follow-up as typed, whose pronouns stood for
    ``previous``. A head noun phrase that is not a vocabulary entity, acting on an entity or on the previous
    topic, makes a composed topic ("nanomaterials" + "targeting" + "cancer-associated fibroblasts")."""
    subjects = [m for m in mentions if m.kind in ("drug", "class", "target", "cell", "condition")]
    head = head_phrase(typed or question)
    if head and (mentions_in(head, subjects) or _GENERIC.match(head)):
        head = None
    if head is None:
        if previous is not None and typed and PRONOUN.search(typed):
            return previous
        return Topic(subjects[0].text, subjects[0].text, entity=True) if subjects else None
    # the object the head acts on: the previous topic behind a pronoun, else the first entity after the head
    source = typed or question
    obj: str | None = None
    verb: str | None = None
    pron = PRONOUN.search(source, source.find(head) + len(head)) if previous else None
    if pron and previous is not None:
        obj = previous.phrase if previous.relation is None else previous.object
        verb = _verb_before(source, pron.start())
    else:
        after = [m for m in subjects if m.start >= question.find(head) + len(head)]
        if after:
            obj, verb = after[0].text, _verb_before(question, after[0].start)
    if obj and verb:
        relation = participle(verb)
        return Topic(f"{head} {relation} {obj}", head, relation, obj)
    return Topic(head, head)


def mentions_in(phrase: str, mentions: Sequence[Mention]) -> bool:
    low = phrase.lower()
    return any(m.text.lower() in low or low in m.text.lower() for m in mentions)


def _verb_before(text: str, pos: int) -> str | None:
    words = re.findall(r"[A-Za-z][\w-]*", text[:pos])
    while words and words[-1].lower() in ("the", "a", "an"):
        words.pop()
    if not words:
        return None
    w = words[-1]
    if w.lower() in _RELATION_PREPOSITIONS:  # "an antibody against it": the preposition is the relation
        return w.lower()
    return w if w.isalpha() and w.islower() and not _STOP_WORDS.match(w) else None


def with_article(phrase: str) -> str:
    """'nanomaterials ...' -> 'the nanomaterials ...'; names and acronyms ("Siglec-15", "TAMs") stay bare."""
    first = phrase.split()[0]
    if first.lower() in ("the", "a", "an") or any(c.isupper() or c.isdigit() for c in first):
        return phrase
    return f"the {phrase}"
