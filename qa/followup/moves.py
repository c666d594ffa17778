"""A follow-up read as an edit of the previous turn's state: fresh, item, widen, narrow/results/topic, replace."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from qa.facts.phases import find_phases
from qa.facts.query import TrialQuery, describe_query, parse_question
from qa.followup.state import ROLES, ConversationState, Entity, Topic, query_to_dict
from qa.followup.topic import PRONOUN, find_topic, with_article

if TYPE_CHECKING:
    from qa.facts.store import FactStore
    from qa.facts.vocab import Vocabulary

FRESH = re.compile(
    r"^\s*(?:(?:a\s+|one\s+)?(?:different|new|another|separate|unrelated|other)\s+(?:question|topic|subject|thing)"
    r"|unrelated|changing\s+(?:the\s+)?(?:topic|subject)|switching\s+topics?|on\s+another\s+note|new\s+topic"
    r"|start\s+over|forget\s+(?:that|the\s+above))\b\s*[:,.;!?\-–—]*\s*",
    re.I,
)
ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3}
ORDINALS |= {"fifth": 4, "5th": 4, "last": -1}
ITEM = re.compile(
    r"\b(?:the\s+)?(?P<n>first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last)\s+"
    r"(?:one|trial|study|result|item|entry)\b|\b(?:number|no\.?|#)\s*(?P<d>\d)\b",
    re.I,
)
WIDEN = re.compile(
    r"\b(?:other|any|all|every|different|regardless\s+of(?:\s+the)?|irrespective\s+of(?:\s+the)?|whatever)\s+"
    r"(?P<what>tumou?r(?:\s+types?)?s?|cancers?(?:\s+types?)?|indications?|diseases?|conditions?|histolog\w*|"
    r"phases?|settings?|lines?(?:\s+of\s+(?:therapy|treatment))?|stages?|status(?:es)?)\b",
    re.I,
)
_WIDEN_ROLE = [("phase", "phase"), ("setting", "setting"), ("line", "setting"), ("stage", "setting")]
_WIDEN_ROLE += [("status", "status")]
_WIDEN_SUFFIX = {"condition": "across tumour types", "phase": "in any phase", "setting": "in any setting"}
ELLIPSIS = re.compile(
    r"^\s*(?:and\s+|but\s+|ok(?:ay)?,?\s+|so\s+)?(?:what|how)\s+about\s+(?P<x>.+?)\s*[?.!]*\s*$"
    r"|^\s*(?:and|also|same\s+(?:question\s+)?for|now|then)\s+(?:for\s+|with\s+|in\s+)?(?P<y>.+?)\s*[?.!]*\s*$"
    r"|^\s*(?:what|how)\s+if\s+(?:we\s+use\s+|it\s+is\s+)?(?P<z>.+?)\s*[?.!]*\s*$",
    re.I,
)
# "Which are phase 3?", "Only the ones in melanoma?": narrowing a list without a pronoun.
# "Only the phase 2 ones", "just the ones in melanoma", "melanoma only": a restriction of the list, asked
# as "Which of them are ...?"
ONLY = re.compile(
    r"^\s*(?:and\s+)?(?:only|just)\s+(?:the\s+)?(?:(?:ones|trials|studies)\s+)?(?P<a>.+?)"
    r"(?:\s+(?:ones|trials|studies))?\s*[?.!]*\s*$"
    r"|^\s*(?:and\s+)?(?:the\s+)?(?P<b>.+?)(?:\s+(?:ones|trials|studies))?\s+only\s*[?.!]*\s*$",
    re.I,
)
IMPLICIT = re.compile(
    r"^\s*(?:and\s+)?(?:which|any|only|just)(?:\s+(?:ones|the\s+ones))?\s+(?:are|were|in|with|of)\b|"
    + ONLY.pattern,
    re.I,
)
_PREPOSITION = re.compile(r"^(?:in|with|of|from|for|on|at|after|before|that|which|who|using|given)\b", re.I)
IMPERATIVE = re.compile(
    r"^(?:please\s+)?(?:tell|explain|describe|define|summari[sz]e|list|show|give)\b", re.I
)
_LEAD = re.compile(r"^\s*(?:and|but|so|ok(?:ay)?|also)\s*,?\s+", re.I)
CODE_NAME = re.compile(r"^[A-Z][A-Za-z]{0,6}-?\d{2,6}[A-Za-z]?$|^\w+(?:mab|nib|cel|cept|leukin|kin)$", re.I)


def entities(vocab: Vocabulary | None, text: str) -> list[Entity]:
    found = (
        [Entity(m.kind, m.name, m.text, ROLES.get(m.kind, m.kind)) for m in vocab.find(text)] if vocab else []
    )
    found += [Entity("phase", norm, text[s:e], "phase") for s, e, norm in find_phases(text)]
    return found


def read(question: str, previous: ConversationState | None, facts: FactStore | None) -> ConversationState:
    """The state ``question`` leaves, read against ``previous`` (None: the first turn)."""
    q = question.strip()
    fresh = FRESH.match(q)
    if fresh and q[fresh.end() :].strip():
        return _new(q[fresh.end() :].strip(), facts, "fresh")
    if previous is None:
        return _new(q, facts, "new")
    item = ITEM.search(q)
    if item and previous.trial_ids:
        return _item(q, item, previous, facts)
    widen = WIDEN.search(q)
    if widen and previous.about_trials:
        return _widen(q, widen.group("what"), previous, facts)
    if PRONOUN.search(q) or (IMPLICIT.match(q) and previous.trial_ids):
        return _refer(q, previous, facts)
    ellipsis = ELLIPSIS.match(q)
    if ellipsis:
        x = next(g for g in ellipsis.groups() if g)
        return _replace(x, previous, facts)
    return _new(q, facts, "new")


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([?,.!])", r"\1", text)
    text = text[:1].upper() + text[1:]
    if text.endswith(("?", ".", "!")):
        return text
    return text + ("." if IMPERATIVE.match(text) else "?")


def _query(facts: FactStore | None, text: str) -> TrialQuery | None:
    return parse_question(facts.vocab, text, facts) if facts else None


def _new(
    question: str, facts: FactStore | None, move: str, previous_topic: Topic | None = None
) -> ConversationState:
    vocab = facts.vocab if facts else None
    query = _query(facts, question)
    mentions = list(vocab.find(question)) if vocab else []
    return ConversationState(
        question=_sentence(question),
        move=move,
        entities=entities(vocab, question),
        filters=query_to_dict(query) if query is not None else None,
        topic=find_topic(question, mentions, previous_topic),
    )


def _trials_phrase(previous: ConversationState, facts: FactStore | None) -> str:
    query = previous.query()
    if query is None or query.empty or facts is None:
        return "the trials"
    return f"the trials of {describe_query(query, facts.vocab)}"


def _antecedent(previous: ConversationState, facts: FactStore | None) -> str | None:
    if previous.about_trials and previous.trial_ids:
        return _trials_phrase(previous, facts)
    if previous.topic:
        return previous.topic.phrase
    return None


# The references substitute() replaces, in this order, each at its first match only.
_SOME_OF_THEM = re.compile(
    r"\b(any|some|all|none|each|many|one|both|most|few)\s+of\s+(?:them|those|these)\b", re.I
)
_WHICH_OF_THEM = re.compile(
    r"\b(?:which|what)\s+(?:ones\s+)?(?:of\s+)?(?:them|those|these)(?:\s+(?:trials|studies|ones))?\b", re.I
)
_POSSESSIVE = re.compile(
    r"\b(?:their|its)\s+(?P<x>[\w-]+(?:\s+(?!in\b|of\b|for\b|with\b|and\b|or\b|at\b|to\b|compared\b|versus\b)[\w-]+){0,2})",
    re.I,
)
_BARE_PRONOUN = re.compile(r"\b(?:them|they|it|those|these)(?:\s+(?:trials|studies|ones))?\b", re.I)


def substitute(text: str, phrase: str) -> str:
    """Pronouns replaced by ``phrase``: "which of those" -> "which <phrase>", "their X" -> "the X of <phrase>"."""
    bare = re.sub(r"^the\s+", "", phrase)
    rules: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
        (_SOME_OF_THEM, lambda m: f"{m.group(1)} of {with_article(phrase)}"),
        (_WHICH_OF_THEM, lambda m: f"{m.group(0).split()[0]} {bare}"),
        (_POSSESSIVE, lambda m: f"the {m.group('x')} of {phrase}"),
        (_BARE_PRONOUN, phrase),
    ]
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text, count=1)
    return text


def _constraints(facts: FactStore | None, text: str) -> TrialQuery:
    # parse_question reads a filter only from a question about trials; the follow-up's own words are one
    query = _query(facts, f"{text} (trials)")
    return query if query is not None else TrialQuery()


def _refer(q: str, previous: ConversationState, facts: FactStore | None) -> ConversationState:
    """A pronoun (or "which are ..."): narrowing or asking about the previous trials, else about the topic."""
    vocab = facts.vocab if facts else None
    body = _LEAD.sub("", q)
    phrase = _antecedent(previous, facts)
    if phrase is None:
        return _new(q, facts, "new")
    only = ONLY.match(body)
    restriction = only and (only.group("a") or only.group("b"))
    if restriction and not PRONOUN.search(body):  # "Only the phase 2 ones" -> "Which of them are phase 2?"
        conditions = [m for m in vocab.find(restriction) if m.kind == "condition"] if vocab else []
        lead = (
            "in " if conditions and conditions[0].start == 0 and not _PREPOSITION.match(restriction) else ""
        )
        body = f"Which of them are {lead}{restriction}?"
    elif not PRONOUN.search(body):  # "Which are phase 3?"
        body = re.sub(r"^(\s*\w+)(\s+(?:ones|the\s+ones))?", r"\1 of them", body, count=1)
    resolved = _sentence(substitute(body, phrase))
    mentions = list(vocab.find(resolved)) if vocab else []
    state = ConversationState(question=resolved, entities=entities(vocab, resolved))
    if previous.about_trials and previous.trial_ids:
        new = _constraints(facts, body)
        merged = previous.query() or TrialQuery()
        if new.empty:
            state.move, state.filters = "results", previous.filters
        else:
            state.move, state.filters = "narrow", query_to_dict(_merge(merged, new))
        state.scope = previous.within()
        state.topic = previous.topic
        return state
    state.move = "topic"
    state.topic = find_topic(resolved, mentions, previous.topic, typed=body)
    query = _query(facts, resolved)
    state.filters = query_to_dict(query) if query is not None else None
    return state


def _merge(old: TrialQuery, new: TrialQuery) -> TrialQuery:
    """``old`` AND ``new``: new groups are added; a new condition, phase or status stands in for the old."""
    return TrialQuery(
        groups=old.groups + [g for g in new.groups if g not in old.groups],
        conditions=new.conditions or old.conditions,
        phases=new.phases or old.phases,
        settings=list(dict.fromkeys(old.settings + new.settings)),
        statuses=new.statuses or old.statuses,
        trials=new.trials or old.trials,
        axis=old.axis or new.axis,
        outcomes=new.outcomes or old.outcomes,
        designations=new.designations or old.designations,
        agencies=new.agencies or old.agencies,
        biomarkers=list(dict.fromkeys(old.biomarkers + new.biomarkers)),
    )


def _item(
    q: str, item: re.Match[str], previous: ConversationState, facts: FactStore | None
) -> ConversationState:
    index = ORDINALS[item.group("n").lower()] if item.group("n") else int(item.group("d")) - 1
    ids = previous.trial_ids
    if not -len(ids) <= index < len(ids):
        return _refer(q, previous, facts)
    trial_id = ids[index]
    label = facts.trial(trial_id).label if facts else trial_id
    resolved = _sentence(_LEAD.sub("", q[: item.start()] + label + q[item.end() :]))
    vocab = facts.vocab if facts else None
    return ConversationState(
        question=resolved,
        move="item",
        entities=entities(vocab, resolved),
        filters=query_to_dict(TrialQuery(trials=[trial_id])),
        scope=[trial_id],
        topic=Topic(label, label),
    )


def _widen(q: str, what: str, previous: ConversationState, facts: FactStore | None) -> ConversationState:
    """Drop a constraint: "what about other tumour types?" searches again without the condition."""
    role = next((r for key, r in _WIDEN_ROLE if key in what.lower()), "condition")
    text = previous.question
    for e in sorted((e for e in previous.entities if e.role == role), key=lambda e: -text.find(e.text)):
        text = re.sub(
            rf"(?:\s+(?:in|for|with|among)(?:\s+patients\s+with)?(?:\s+the)?)?\s+{re.escape(e.text)}",
            "",
            text,
            count=1,
        )
    text = f"{text.rstrip(' ?.!')} {_WIDEN_SUFFIX.get(role, '')}"
    state = _new(text, facts, "widen", previous.topic)
    if state.filters is not None:
        query = previous.query() or TrialQuery()
        dropped = {"condition": "conditions", "phase": "phases", "setting": "settings", "status": "statuses"}[
            role
        ]
        setattr(query, dropped, set() if dropped == "phases" else [])
        state.filters = query_to_dict(query)
    return state


def _replace(x: str, previous: ConversationState, facts: FactStore | None) -> ConversationState:
    """Ellipsis, "what about nivolumab?": the new entity stands in for the previous one of the same role."""
    vocab = facts.vocab if facts else None
    new = entities(vocab, x)
    text = previous.question
    if not new and CODE_NAME.match(x.strip()) and previous.about_trials:
        drugs = [e for e in entities(vocab, text) if e.kind == "drug"]
        if drugs:
            new = [Entity("drug", x.strip(), x.strip(), "intervention")]
    if not new:
        return _replace_topic(x, previous, facts)
    for e in new:
        present = entities(vocab, text)
        same = [p for p in present if p.kind == e.kind] or [p for p in present if p.role == e.role]
        if vocab and e.kind == "drug":  # SD-101 -> CMP-001: the drug of the same class, when there is one
            classes = set(vocab.drug_classes(e.name))
            same = [p for p in same if p.kind == "drug" and classes & set(vocab.drug_classes(p.name))] or same
        if same:
            target = same[-1]
            at = text.rfind(target.text)
            text = text[:at] + e.text + text[at + len(target.text) :]
        else:
            text = _add(text, e)
    state = _new(text, facts, "replace", previous.topic)
    state.scope = previous.scope
    return state


def _add(text: str, e: Entity) -> str:
    """An entity added to a question with none of its role: "phase 3 trials", "... in melanoma?"."""
    if e.role == "phase":
        m = re.search(r"\b(trials|studies|trial|study)\b", text)
        if m:
            return f"{text[: m.start()]}{e.text} {text[m.start() :]}"
        return f"{text.rstrip(' ?.!')} in {e.text}?"
    joiner = {"condition": "in", "setting": "in the", "intervention": "with"}.get(e.role, "with")
    suffix = " setting" if e.role == "setting" else ""
    return f"{text.rstrip(' ?.!')} {joiner} {e.text}{suffix}?"


def _replace_topic(x: str, previous: ConversationState, facts: FactStore | None) -> ConversationState:
    """ "What about the microRNA approach?": an alternative to the previous topic, about the same object."""
    x = x.strip().rstrip("?.!")
    topic = previous.topic
    if topic and topic.relation and topic.object:
        text = f"What about {x} for {topic.relation} {topic.object}?"
    elif topic and topic.phrase in previous.question:
        text = previous.question.replace(topic.phrase, re.sub(r"^the\s+", "", x), 1)
    elif topic:
        text = f"What about {x} for {topic.phrase}?"
    else:
        text = f"{previous.question.rstrip(' ?.!')}, with {x}?"
    state = _new(text, facts, "replace", previous.topic)
    if topic and topic.relation and topic.object:
        state.topic = Topic(f"{x} {topic.relation} {topic.object}", x, topic.relation, topic.object)
    return state
