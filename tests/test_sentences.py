"""Sentence boundaries on the cases that break naive splitters in biomedical text."""

from __future__ import annotations

import pytest
from readers.paperset import PAPERS, require_papers

from qa.readers.jats import JatsReader
from qa.sentences import split_sentences


def _split(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Shi et al. (35) combined PLX3397 with OVs. It worked.",
            ["Shi et al. (35) combined PLX3397 with OVs.", "It worked."],
        ),
        (
            "Drugs (e.g. SD-101) act. Others, i.e. CMP-001, too.",
            ["Drugs (e.g. SD-101) act.", "Others, i.e. CMP-001, too."],
        ),
        ("Inhibitors (e.g., Fasudi, H1152) help. Next.", ["Inhibitors (e.g., Fasudi, H1152) help.", "Next."]),
        ("ORR was 59.5% (22/37). CR in seven.", ["ORR was 59.5% (22/37).", "CR in seven."]),
        ("PIVOT-02 (NCT02983045). Phase II is ongoing.", ["PIVOT-02 (NCT02983045).", "Phase II is ongoing."]),
        ("CD8+ T cells rose. Tregs fell.", ["CD8+ T cells rose.", "Tregs fell."]),
        (
            "Arm A vs. arm B differed. See Fig. 2 for more.",
            ["Arm A vs. arm B differed.", "See Fig. 2 for more."],
        ),
        (
            "OSE-2101 (ESMO2021. LBA47) is a vaccine. Done.",
            ["OSE-2101 (ESMO2021. LBA47) is a vaccine.", "Done."],
        ),
        ("J. Smith agreed. 4-1BB binds.", ["J. Smith agreed.", "4-1BB binds."]),
        ("Better in group A. The HR was 0.2.", ["Better in group A.", "The HR was 0.2."]),
        ("Seen in arms A, B and C. None else.", ["Seen in arms A, B and C.", "None else."]),
        ("As shown by Smith and A. Jones here.", ["As shown by Smith and A. Jones here."]),
        ("We thank A. B. Smith for help.", ["We thank A. B. Smith for help."]),
        ("Why? Because it works! Yes.", ["Why?", "Because it works!", "Yes."]),
    ],
)
def test_biomedical_boundaries(text: str, expected: list[str]) -> None:
    assert _split(text) == expected


def test_offsets_index_the_source() -> None:
    text = "  First one here.  Second (Fig. 1) here.\n\nThird."
    for a, b in split_sentences(text):
        assert text[a:b] == text[a:b].strip() and text[a:b]
    assert _split(text) == ["First one here.", "Second (Fig. 1) here.", "Third."]


def test_unclosed_bracket_does_not_swallow_the_rest() -> None:
    text = "An unclosed ( bracket. " + "Filler words go here. " * 30
    assert len(split_sentences(text)) > 20


def test_group_labels_end_sentences_in_a_real_trial_paper() -> None:
    """The killer-T-cell trial calls its arms group A and group B; "group A." ends a sentence there."""
    require_papers()
    text = JatsReader().read(PAPERS / "cii2015-killer-t-dc-lung-phase3.xml").text
    sentences = [text[a:b] for a, b in split_sentences(text)]
    hazard = [s for s in sentences if "0.229 (p = 0.0013)" in s]
    assert hazard and all(s.startswith("The hazard ratio (HR) was 0.229") for s in hazard)
    assert any(s.endswith("statistically significantly better in group A.") for s in sentences)
