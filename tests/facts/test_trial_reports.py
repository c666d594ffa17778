"""A paper reporting one trial yields that trial's record: registry id, phase, arms, drugs, condition and its
outcomes with values, each with the sentence it came from (checked against the paper's text here)."""

from __future__ import annotations

import re

import pytest
from papers_store import papers_store, trials_of

from qa.facts import Trial
from qa.facts.outcomes import Outcome

TRIAL_PAPERS = [
    "jitc2018-bth1677-nsclc-rct",
    "cii2015-killer-t-dc-lung-phase3",
    "jitc2013-cea-peptide-vaccine-pancreatic",
    "jtm2007-imiquimod-tlr7-actinic-keratosis",
]


def _own(doc_id: str) -> Trial:
    store, _docs = papers_store()
    return trials_of(store, doc_id)[0]


def _outcome(trial: Trial, measure: str) -> Outcome:
    found = [o for o in trial.outcomes if o.measure == measure]
    assert found, f"{measure} not among {[o.measure for o in trial.outcomes]}"
    return found[0]


def _number(value: str) -> str:
    return re.sub(r"[^\d.]", "", value)


@pytest.mark.parametrize(
    "doc_id",
    TRIAL_PAPERS,
)
def test_every_outcome_and_quote_is_the_papers_own_text(doc_id: str) -> None:
    store, docs = papers_store()
    doc, trial = docs[doc_id], _own(doc_id)
    assert trial.outcomes and trial.arms and trial.phase and trial.conditions and trial.interventions
    for o in trial.outcomes:
        assert o.quote and o.quote in doc.text
        assert doc.text[o.start : o.end] == o.text and o.text in o.quote
        for value in [o.value, *o.versus]:
            assert _number(value) in o.quote.replace(" ", "")
    for e in trial.evidence:
        assert doc.text[e.start : e.end] == e.quote
    for arm in trial.arms:
        assert arm in doc.text


def test_bth1677_randomized_phase_2_in_nsclc() -> None:
    trial = _own("jitc2018-bth1677-nsclc-rct")
    assert trial.nct_ids == ["NCT00874107"] and trial.registry_ids == []
    assert trial.phase == "Phase 2" and trial.conditions == ["NSCLC"]
    assert {"BTH1677", "bevacizumab", "carboplatin", "paclitaxel"} <= set(trial.interventions)
    assert trial.arms == ["BTH1677 arm", "Control arm"]
    orr = _outcome(trial, "ORR")
    assert (orr.value, orr.versus) == ("60.4%", ["43.5%"])
    mos = _outcome(trial, "mOS")
    assert (mos.value, mos.versus) == ("16.1 months", ["11.6 months"])
    pfs = _outcome(trial, "PFS")
    assert (pfs.value, pfs.versus) == ("11.6 months", ["9.6 months"])
    dor = _outcome(trial, "mDOR")
    assert (dor.value, dor.versus) == (
        "10.3 months",
        ["5.6 months"],
    )  # the CI's 5.6 inside brackets is skipped
    assert _outcome(trial, "mOS HR").value == "0.75"


def test_other_trials_a_trial_report_names_stay_records_of_their_own() -> None:
    store, _docs = papers_store()
    ids = {t.id for t in trials_of(store, "jitc2018-bth1677-nsclc-rct")}
    assert {"NCT03003468", "NCT02086175", "NCT02981303"} <= ids  # follow-on trials of its discussion
    own = _own("jitc2018-bth1677-nsclc-rct")
    assert not ({"NCT03003468", "NCT02086175", "NCT02981303"} & set(own.nct_ids))
    assert not any(o.value == "35%" for o in own.outcomes)  # the ECOG 4599 comparison is the ECOG study's


def test_killer_t_cell_phase_3_landmarks_and_hazard_ratio() -> None:
    trial = _own("cii2015-killer-t-dc-lung-phase3")
    assert trial.phase == "Phase 3" and trial.conditions == ["NSCLC"]
    assert trial.arms == ["chemo-immunotherapy (group A)", "chemotherapy (group B)"]
    assert {"adoptive cell therapy", "chemotherapy"} <= set(trial.interventions)
    five = _outcome(trial, "5-year OS")
    assert (five.value, five.versus) == ("81.4%", ["48.3%"])
    two = _outcome(trial, "2-year OS")
    assert (two.value, two.versus) == ("93.4%", ["66.0%"])
    rfs = _outcome(trial, "5-year RFS")
    assert (rfs.value, rfs.versus) == ("56.8%", ["26.2%"])
    assert _outcome(trial, "HR").value == "0.229"


def test_cea_peptide_vaccine_dose_arms_and_survival_in_days() -> None:
    trial = _own("jitc2013-cea-peptide-vaccine-pancreatic")
    assert trial.nct_ids == ["NCT00203892"] and trial.phase == "Phase 1"
    assert trial.conditions == ["pancreatic cancer"]
    assert "CAP1-6D" in trial.interventions and "cancer vaccine" in trial.interventions
    assert trial.arms == ["10 μg (arm A)", "100 μg (arm B)", "1000 μg (arm C)"]
    t_cells = _outcome(trial, "T-cell response")
    assert (t_cells.value, t_cells.versus) == ("20%", ["60%", "100%"])
    assert _outcome(trial, "mOS").value == "334 days" and _outcome(trial, "mPFS").value == "56 days"


def test_a_sentence_crediting_other_authors_stays_out_of_the_trials_record() -> None:
    """ "After this trial was initiated, Slingluff and colleagues reported ... (34)" speaks of their melanoma
    study: the CEA vaccine trial's record does not take it as its own evidence."""
    store, docs = papers_store()
    doc_id = "jitc2013-cea-peptide-vaccine-pancreatic"
    trial = _own(doc_id)
    assert "Slingluff and colleagues" in docs[doc_id].text
    assert not any("Slingluff" in e.quote for e in trial.evidence)
    assert not any("Slingluff" in (o.quote or "") for o in trial.outcomes)
    assert any("We conducted a pilot randomized phase I trial" in e.quote for e in trial.evidence)


def test_imiquimod_phase_2_without_registry_id() -> None:
    trial = _own("jtm2007-imiquimod-tlr7-actinic-keratosis")
    assert trial.nct_ids == [] and trial.registry_ids == []
    assert trial.phase == "Phase 2" and trial.interventions == ["imiquimod"]
    assert trial.conditions == ["actinic keratosis"] and trial.arms == ["imiquimod", "placebo cream"]
    assert "TLR7" in trial.targets
    clearance = _outcome(trial, "clearance")
    assert clearance.value == "25%"
    # "The complete clearance rate in a study where AK subjects were treated for 16 weeks ... was 57% (17)."
    assert not any(o.value == "57%" for o in trial.outcomes)  # another study's figure, cited


@pytest.mark.parametrize(
    "doc_id",
    TRIAL_PAPERS,
)
def test_one_record_per_trial_report_however_often_it_describes_itself(doc_id: str) -> None:
    store, _docs = papers_store()
    own = [t for t in trials_of(store, doc_id) if t.arms]
    assert len(own) == 1
    assert (
        sum(
            1
            for t in trials_of(store, doc_id)
            if not t.primary.refs and "this" in t.primary.quote[:5].lower()
        )
        <= 1
    )


@pytest.mark.parametrize(
    "doc_id",
    ["bmchsr2014-quality-improvement-malawi", "hindawi2010-heart-failure-rehab-focus-groups"],
)
def test_off_topic_papers_yield_no_trials(doc_id: str) -> None:
    store, docs = papers_store()
    assert doc_id in docs and docs[doc_id].text
    assert trials_of(store, doc_id) == []
