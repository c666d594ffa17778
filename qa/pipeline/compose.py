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
from qa.facts.model import Trial
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


def _details(trial: Trial) -> str:
    details = [d for d in (trial.phase, " + ".join(trial.interventions)) if d]
    outcomes = ", ".join(f"{o.measure} {o.value}" for o in trial.outcomes[:2])
    if outcomes:
        details.append(outcomes)
    return "; ".join(details)


def lead_with_trials(answer: Answer, trials: list[Trial], marker: Callable[[Trial], int]) -> None:
    """Lead ``answer`` with the matching trials, then each cited sentence once."""
    parts = []
    for trial in trials:
        details = _details(trial)
        label = trial_label(trial)
        parts.append(f"{label} ({details}) [{marker(trial)}]" if details else f"{label} [{marker(trial)}]")
    noun = "study matches" if len(trials) == 1 else "studies match"
    lead = f"{len(trials)} {noun}: " + "; ".join(parts) + "."
    said = {s.text.strip() for s in answer.sentences} if not answer.abstained else set()
    quotes: list[str] = []
    for trial in trials:
        quote = trial.primary.quote.strip()
        if len(quotes) >= MAX_QUOTES or quote in said:
            continue
        said.add(quote)
        quotes.append(f"{quote} [{marker(trial)}]")
    body = [] if answer.abstained else [answer.text]
    answer.text = " ".join([lead, *quotes, *body])
    answer.abstained = False


def reported_by_trials(answer: Answer, trials: list[Trial]) -> bool:
    """Whether one of ``trials`` has an outcome record of the figure the question asks for (an ORR for a
    response-rate question): the facts then report what the sentences near the name did not show."""
    if answer.asked.kind != "value":
        return False
    return any(holds(answer.asked, f"{o.measure} {o.value}") for t in trials for o in t.outcomes)


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
