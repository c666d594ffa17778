"""One readable answer: a lead sentence about the trials, then each cited sentence once; or a plain "no".

The lead names the matching studies, each cited to the passage its record comes from; the sentences that
follow are the records' own quotes and the extracted answer sentences, each said once (a quote the answer
already holds is not repeated), followed by the marker of its passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from qa.answer import Answer
from qa.answering.entities import names_in
from qa.answering.kinds import holds
from qa.facts.model import Evidence, Outcome, Trial
from qa.facts.query import TrialQuery, describe_query
from qa.followup import Resolution, query_from_dict
from qa.index.keyword import tokenize

if TYPE_CHECKING:
    from qa.facts.store import FactStore

MAX_QUOTES = 4  # the records' own sentences quoted after the lead; the rest are in ``trials``
# A question that asks for a list of studies ("Which trials ...", "List the studies ..."), as opposed to a
# yes/no question ("Has any ... reached phase III?"), whose answer may be a sentence saying no.
_LIST_QUESTION = re.compile(r"^\s*(?:which|what|list|name|show|give|find|tell me)\b", re.IGNORECASE)
# Words by which a question asks for studies themselves, not for drugs, antibodies or products that studies
# test ("Which monoclonal antibody against Siglec-15 is being tested clinically?" asks for the antibody).
_STUDY_WORDS = re.compile(
    r"\b(?:trials?|stud(?:y|ies)|regimens?|combinations?|cohorts?|arms?|NCT\d*)\b", re.IGNORECASE
)


def asked_query(resolution: Resolution) -> TrialQuery | None:
    """The trial filter the resolved question asks for, or None when it is not about trials."""
    state = resolution.state
    if state is None or state.filters is None:
        return None
    return query_from_dict(state.filters)


def trial_label(trial: Trial) -> str:
    """A trial's name, else its NCT ids, else what it tested in whom ("a trial of SD-101 + ... in melanoma")."""
    if trial.name:
        return trial.name
    if trial.nct_ids or trial.registry_ids:
        return ", ".join(trial.nct_ids or trial.registry_ids)
    what = " + ".join(trial.interventions) or "an intervention"
    return f"a trial of {what}" + (f" in {trial.conditions[0]}" if trial.conditions else "")


def _asked_outcomes(answer: Answer, trial: Trial) -> list[Outcome]:
    """The trial's outcome records of the figure a value question asks for (none for other questions)."""
    if answer.asked.kind != "value":
        return []
    return [o for o in trial.outcomes if holds(answer.asked, f"{o.measure} {o.value}")]


def _details(trial: Trial, asked: list[Outcome]) -> str:
    details = [d for d in (trial.phase, " + ".join(trial.interventions)) if d]
    outcomes = ", ".join(f"{o.measure} {o.value}" for o in (asked or trial.outcomes)[:2])
    if outcomes:
        details.append(outcomes)
    return "; ".join(details)


def _quoted(answer: Answer, trial: Trial) -> Evidence:
    """What to quote for a trial: for a value question the evidence holding its record of the asked figure
    (when the trial's evidence holds that sentence), else its primary evidence."""
    for outcome in _asked_outcomes(answer, trial):
        for evidence in trial.evidence:
            if outcome.quote and outcome.quote.strip() in evidence.quote:
                return evidence
    return trial.primary


def lead_with_trials(
    answer: Answer, trials: list[Trial], marker: Callable[[str], int], *, total: int | None = None
) -> None:
    """Lead ``answer`` with the matching trials, then each cited sentence once (``marker``: the citation
    number of a passage id). For a value question each trial shows, and is quoted by, its records of the
    asked figure (its median OS, not its first two outcomes). ``total``: how many match, when ``trials``
    are the first of more."""
    parts = []
    for trial in trials:
        details = _details(trial, _asked_outcomes(answer, trial))
        label, at = trial_label(trial), marker(trial.primary.passage_id)
        parts.append(f"{label} ({details}) [{at}]" if details else f"{label} [{at}]")
    total = max(total or 0, len(trials))
    noun = "study matches" if total == 1 else "studies match"
    shown = f" (the first {len(trials)} in document order)" if total > len(trials) else ""
    lead = f"{total:,} {noun}{shown}: " + "; ".join(parts) + "."
    said = {s.text.strip() for s in answer.sentences} if not answer.abstained else set()
    quotes: list[str] = []
    for trial in trials:
        evidence = _quoted(answer, trial)
        quote = evidence.quote.strip()
        if len(quotes) >= MAX_QUOTES or quote in said:
            continue
        said.add(quote)
        quotes.append(f"{quote} [{marker(evidence.passage_id)}]")
    body = [] if answer.abstained else [answer.text]
    answer.text = " ".join([lead, *quotes, *body])
    answer.abstained = False


def reported_by_trials(answer: Answer, trials: list[Trial]) -> bool:
    """Whether one of ``trials`` has an outcome record of the figure the question asks for (an ORR for a
    response-rate question): the facts then report what the sentences near the name did not show."""
    if answer.asked.kind != "value":
        return False
    return any(holds(answer.asked, f"{o.measure} {o.value}") for t in trials for o in t.outcomes)


def trials_testing(facts: FactStore, answer: Answer, documents: list[str] | None) -> list[Trial]:
    """For a figure the sentences did not show ("the ORR of BTH1677 plus bevacizumab"): the trials that
    test every thing the question names (each among their interventions, conditions or names) and hold an
    outcome record of the asked figure. The drugs the vocabulary knows narrow the store; a name it does not
    know (a trial's own code, BTH1677) must still be among a trial's interventions. None named as a drug:
    no trials (a figure is not looked up by condition alone)."""
    if answer.asked.kind != "value" or not answer.named:
        return []
    question = " ".join(e.text for e in answer.named)
    drugs = sorted({m.name for m in facts.vocab.find(question) if m.kind == "drug"})
    if not drugs:
        return []
    found = facts.filter_trials(TrialQuery(groups=[[("drug", d)] for d in drugs]), documents=documents)
    out = []
    for trial in found:
        tokens = frozenset(tokenize(" ".join([*trial.interventions, *trial.conditions, trial.name or ""])))
        if all(names_in(e, tokens) for e in answer.named) and reported_by_trials(answer, [trial]):
            out.append(trial)
    return out


def _names_all(answer: Answer) -> bool:
    """Whether the cited sentences name everything the question names ("No CAR-NK cell therapy has entered
    phase III" answers "Has any CAR-NK cell therapy reached phase III?"; a sentence about oncolytic viruses
    in mice does not answer one about oncolytic viruses in glioblastoma)."""
    tokens = frozenset(tokenize(" ".join(s.text for s in answer.sentences)))
    return all(names_in(e, tokens) for e in answer.named)


def say_no_trial(
    answer: Answer, query: TrialQuery, facts: FactStore | None, question: str, *, filtered: bool = False
) -> None:
    """The question asks for trials and none matches: say so plainly and abstain, unless a yes/no
    question is answered by the sentences themselves ("No CAR-NK cell therapy has entered phase III"), or
    the question lists things (antibodies, products) rather than studies and the sentences name them.
    ``filtered``: the question was restricted to some documents."""
    phrase = describe_query(query, facts.vocab if facts else None)
    where = "selected" if filtered else "indexed"
    message = f"No trial in the {where} documents matches {phrase}."
    if not answer.abstained and not _STUDY_WORDS.search(question):
        return  # asks for things (antibodies, products), not studies: the sentences that name them answer
    if not answer.abstained and not _LIST_QUESTION.match(question) and _names_all(answer):
        answer.text = f"{message} {answer.text}"
        return
    answer.text = message
    answer.abstained = True
    answer.reason = "no_matching_trial"
    answer.sentences = []
