"""Searching within a real paper: its abstract is found from the reader's sections, and a question asked of
the paper (a document filter) gives the abstract's statement of a result its due."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from readers.paperset import stage_paper

from qa.encoding import Embedder
from qa.library.changes import add_documents
from qa.retrieval import ABSTRACT_BOOST, Hit
from qa.services import Services
from qa.settings import Settings

PAPER = "cii2015-killer-t-dc-lung-phase3.xml"
DOC = Path(PAPER).stem


@pytest.fixture(scope="module")
def paper_services(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, built_index: Path, embedder: Embedder
) -> Services:
    """The seed index with the phase III lung-cancer trial report added (a JATS paper with an abstract)."""
    root = tmp_path_factory.mktemp("paper")
    copy = Settings(corpus_dir=root / "corpus", index_dir=root / "index")
    shutil.copytree(settings.corpus_dir, copy.corpus_dir)
    shutil.copytree(settings.index_dir, copy.index_dir, symlinks=True)
    add_documents(copy, embedder, stage_paper(copy, PAPER))
    return Services.start(copy, embedder=embedder)


def test_abstract_rows_are_the_passages_under_the_papers_abstract(paper_services: Services) -> None:
    retriever, passages = paper_services.retriever, paper_services.index.passages
    rows = retriever.papers.abstract_rows([DOC])
    everything = retriever.document_rows([DOC])
    assert 0 < len(rows) < len(everything) / 4
    in_abstract = {int(r) for r in everything if passages[int(r)].section[:1] == ["Abstract"]}
    assert set(rows.tolist()) == in_abstract
    assert any("81.4" in passages[int(r)].text for r in rows)  # the abstract states the 5-year survival
    # the plain-text seed reviews have theirs too (an "Abstract" line the structure reader marks)
    for seed in (d for d in paper_services.index.documents if d != DOC):
        found = retriever.papers.abstract_rows([seed])
        assert len(found) and all(passages[int(r)].section[:1] == ["Abstract"] for r in found)
        assert passages[int(retriever.document_rows([seed])[-1])].section[:1] != ["Abstract"]


def test_a_question_asked_of_the_paper_reaches_its_abstract(paper_services: Services) -> None:
    retriever = paper_services.retriever
    # the abstract states it ("Between April 2007 and July 2012, 103 ... patients were randomly assigned");
    # the body's methods passages about randomisation outrank it without the prior
    question = "How many patients were randomised and when?"
    vector = retriever.encode([question])[0]

    def search(boost: float, documents: list[str] | None = [DOC]) -> list[Hit]:  # noqa: B006
        retriever.abstract_boost, saved = boost, retriever.abstract_boost
        try:
            return retriever.search(question, 5, query_vector=vector, documents=documents)
        finally:
            retriever.abstract_boost = saved

    def states_it(hits: list[Hit]) -> list[bool]:
        return ["103 postsurgical" in h.passage.text and h.passage.section[:1] == ["Abstract"] for h in hits]

    with_prior, without = search(ABSTRACT_BOOST), search(0.0)
    assert any(states_it(with_prior)) and not any(states_it(without))
    # the body's passages keep their scores: only the abstract's rise, by the boost
    plain = {h.passage.id: h.score for h in without}
    for h in with_prior:
        if h.passage.id in plain:
            lifted = h.passage.section[:1] == ["Abstract"]
            assert h.score == pytest.approx(plain[h.passage.id] + (ABSTRACT_BOOST if lifted else 0.0))
    # a question of the whole library has no "this paper": no prior
    assert [h.passage.id for h in search(ABSTRACT_BOOST, None)] == [h.passage.id for h in search(0.0, None)]


def test_a_paper_asked_in_long_form_is_searched_in_its_own_abbreviation(paper_services: Services) -> None:
    retriever = paper_services.retriever
    question = "How many courses of activated killer T cells and dendritic cells did each patient receive?"
    assert "AKT-DC" in retriever.papers.expansions(question, [DOC])
    # the other way round (an abbreviation asked) is left to the question: within the paper it is everywhere
    assert retriever.papers.expansions("How many AKT-DC courses were given?", [DOC]) == []
    # a seed review does not define AKT-DC: asked of it alone, nothing is added
    seed = next(d for d in paper_services.index.documents if d != DOC)
    assert "AKT-DC" not in retriever.papers.expansions(question, [seed])
    rows = retriever.document_rows([DOC])
    within = retriever.keyword_scores(question, documents=[DOC])[rows]
    plain = retriever.keyword_scores(question)[rows]
    passages = paper_services.index.passages.rows(rows.tolist())
    uses = np.array(["AKT-DC" in p.text for p in passages])
    assert uses.any() and (within[uses] > plain[uses]).all() and (within[~uses] == plain[~uses]).all()


def test_within_a_paper_its_common_topic_is_taken_off_the_dense_side(paper_services: Services) -> None:
    retriever, index = paper_services.retriever, paper_services.index
    rows = retriever.document_rows([DOC])
    mean = np.asarray(index.dense_vectors(rows), dtype=np.float64).mean(axis=0)
    centroid = retriever.papers.centroid([DOC])
    assert np.allclose(centroid, mean / np.linalg.norm(mean)) and np.isclose(np.linalg.norm(centroid), 1.0)
    both = retriever.papers.centroid([DOC, *(d for d in index.documents if d != DOC)])
    assert np.isclose(np.linalg.norm(both), 1.0) and not np.allclose(both, centroid)
    question = "How were the killer T cells grown before transfer?"
    vector = retriever.encode([question])[0]
    saved = retriever.topic_weight
    try:
        retriever.topic_weight = 0.0
        plain, unfiltered = (
            [h.passage.id for h in retriever.search(question, 5, query_vector=vector, documents=d)]
            for d in ([DOC], None)
        )
        retriever.topic_weight = saved
        within = [h.passage.id for h in retriever.search(question, 5, query_vector=vector, documents=[DOC])]
        assert [h.passage.id for h in retriever.search(question, 5, query_vector=vector)] == unfiltered
    finally:
        retriever.topic_weight = saved
    assert (
        all(i.startswith(DOC) for i in within) and within != plain
    )  # the weight changes the paper's ranking
