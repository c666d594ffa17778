"""A figure the sentences near the question's names do not show, found in the trial records that test
everything the question names: a real trial report added to the seed index, asked of it as a user would."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ask_blocking
from readers.paperset import stage_paper

from qa.encoding import Embedder
from qa.library.changes import add_documents
from qa.services import Services
from qa.settings import Settings

PAPER = "jitc2018-bth1677-nsclc-rct.xml"  # BTH1677 + bevacizumab/carboplatin/paclitaxel vs the chemotherapy


@pytest.fixture(scope="module")
def report_services(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, built_index: Path, embedder: Embedder
) -> Services:
    root = tmp_path_factory.mktemp("report")
    copy = Settings(corpus_dir=root / "corpus", index_dir=root / "index", rate_limit_per_minute=0)
    shutil.copytree(settings.corpus_dir, copy.corpus_dir)
    shutil.copytree(settings.index_dir, copy.index_dir, symlinks=True)
    add_documents(copy, embedder, stage_paper(copy, PAPER))
    return Services.start(copy, embedder=embedder)


@pytest.mark.parametrize(
    ("question", "figure", "not_shown"),
    [
        # the result sentences name "the BTH1677 arm", not bevacizumab, which the seed reviews name too
        ("What was the objective response rate with BTH1677 plus bevacizumab?", "60.4%", "mOS"),
        ("What was the median overall survival with BTH1677 and bevacizumab?", "16.1 months", "ORR 60.4%"),
    ],
)
def test_a_combinations_figure_comes_from_the_trial_testing_it(
    report_services: Services, question: str, figure: str, not_shown: str
) -> None:
    result = ask_blocking(report_services, question)
    assert result.answer.reason == "answered" and not result.abstained
    lead, _, quote = result.answer.text.partition("].")
    assert "NCT00874107" in lead and figure in lead  # the asked figure leads,
    assert not_shown not in lead  # not the trial's first two outcomes
    assert figure in quote  # quoted from the sentence that reports it, cited
    cited = int(quote.rsplit("[", 1)[1].split("]")[0])
    assert figure in result.hits[cited - 1].passage.text


@pytest.mark.parametrize(
    "question",
    [
        # the paper names an earlier BTH1677 + cetuximab study, with no response rate
        "What was the objective response rate of BTH1677 plus cetuximab?",
        # a trial question's own filter stands: the phase 2 trial is not a phase 3 one's answer
        "What was the objective response rate in phase 3 trials of BTH1677 plus bevacizumab?",
    ],
)
def test_the_figure_of_a_trial_the_question_does_not_ask_about_is_not_its_answer(
    report_services: Services, question: str
) -> None:
    result = ask_blocking(report_services, question)
    assert "60.4" not in result.answer.text and result.answer.reason != "answered", result.answer.text
