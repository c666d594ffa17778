"""The document filter on the question path: both retrieval sides and the trials stay within the documents."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DOC_000, DOC_003, ask_blocking

from qa.errors import UnknownDocument
from qa.index.dense import DenseIndex
from qa.services import Services

HEADLINE = "Which trials combine TLR9 agonists with pembrolizumab?"


def test_a_filtered_ask_returns_top_k_passages_of_that_document_only(services: Services) -> None:
    # The headline question's best passages are in 000; restricted to 003 it still gets 8 of 003's own,
    # which a post-filter of the global top k would not give.
    unfiltered = ask_blocking(services, HEADLINE, top_k=8)
    assert sum(h.passage.doc_id == DOC_003 for h in unfiltered.hits) < 8
    result = ask_blocking(services, HEADLINE, top_k=8, documents=[DOC_003])
    assert len(result.hits) == 8
    assert {h.passage.doc_id for h in result.hits} == {DOC_003}
    assert all(s.sentence.doc_id == DOC_003 for s in result.answer.sentences)
    assert result.resolution.to_dict()["documents"] == [DOC_003]


def test_filtered_hits_are_the_documents_best_passages(services: Services) -> None:
    """Dense-only search within a document ranks exactly as scoring every passage of it would."""
    retriever, index = services.retriever, services.index
    query = "nanoparticles that deliver checkpoint inhibitors to tumours"
    qvec = retriever.encode([query])[0]
    rows = retriever.document_rows([DOC_003])
    exact = rows[np.argsort(-(index.dense_vectors(rows) @ qvec), kind="stable")]
    hits = retriever.search(query, k=5, mode="dense", query_vector=qvec, documents=[DOC_003])
    first = index.passages[int(exact[0])]
    top = hits[0].passage  # the best passage, or a span merged around it
    assert top.doc_id == DOC_003 and top.start <= first.start and first.end <= top.end
    assert all(h.passage.doc_id == DOC_003 for h in hits)


@pytest.mark.parametrize("quantizer", ["none", "sq8"])
def test_an_approximate_index_searched_within_rows_is_exact(services: Services, quantizer: str) -> None:
    """Exact over the stored vectors: the float ones, or HNSW-SQ8's 8-bit ones (scores within 0.02)."""
    index = services.index
    vectors = index.dense_vectors(np.arange(len(index.passages)))
    flat, hnsw = DenseIndex.build(vectors, "flat"), DenseIndex.build(vectors, "hnsw", quantizer=quantizer)
    rows = services.retriever.document_rows([DOC_000])
    query = vectors[int(rows[3])][None, :]
    flat_scores, flat_rows = flat.search(query, 10, rows=rows)
    hnsw_scores, hnsw_rows = hnsw.search(query, 10, rows=rows)
    assert set(flat_rows[0]) <= set(rows.tolist()) and flat_rows[0][0] == rows[3]
    if quantizer == "none":
        assert flat_rows[0].tolist() == hnsw_rows[0].tolist()
        assert np.allclose(flat_scores, hnsw_scores, atol=1e-5)
    else:
        stored = query @ hnsw.vectors(rows).T
        assert hnsw_rows[0][0] == rows[3] and set(hnsw_rows[0]) <= set(rows.tolist())
        assert np.allclose(hnsw_scores[0], np.sort(stored[0])[::-1][:10], atol=1e-5)
        assert np.allclose(hnsw_scores, flat_scores, atol=0.02)  # each score within 0.02, so each rank's


def test_trials_are_those_the_documents_describe(services: Services) -> None:
    everywhere = ask_blocking(services, HEADLINE)
    assert everywhere.trials
    for doc_id in (DOC_000, DOC_003):
        result = ask_blocking(services, HEADLINE, documents=[doc_id])
        assert {t.id for t in result.trials} <= {t.id for t in everywhere.trials}
        for t in result.trials:
            assert t.evidence and all(e.doc_id == doc_id for e in t.evidence)
        assert all(h.passage.doc_id == doc_id for h in result.hits)
    described = {e.doc_id for t in everywhere.trials for e in t.evidence}
    if DOC_003 not in described:
        only = ask_blocking(services, HEADLINE, documents=[DOC_003])
        assert only.trials == [] and "selected documents" in only.answer.text


def test_a_follow_up_keeps_the_filter_unless_it_sets_one(services: Services) -> None:
    first = ask_blocking(
        services, "How do nanoparticles overcome immunotherapy resistance?", documents=[DOC_003]
    )
    kept = ask_blocking(
        services, "What about tumour-associated macrophages?", conversation_id=first.conversation_id
    )
    assert kept.resolution.to_dict()["documents"] == [DOC_003]
    assert {h.passage.doc_id for h in kept.hits} == {DOC_003}
    moved = ask_blocking(
        services, "And dendritic cells?", conversation_id=first.conversation_id, documents=[DOC_000]
    )
    assert {h.passage.doc_id for h in moved.hits} == {DOC_000}
    lifted = ask_blocking(services, "And T cells?", conversation_id=first.conversation_id, documents=[])
    assert lifted.resolution.to_dict()["documents"] is None


def test_unknown_document_ids_are_named(services: Services) -> None:
    with pytest.raises(UnknownDocument) as err:
        ask_blocking(services, HEADLINE, documents=[DOC_003, "no-such-paper", f"{DOC_000},also-missing"])
    assert err.value.status == 404 and err.value.detail == {"unknown": ["no-such-paper", "also-missing"]}
    assert "'no-such-paper'" in err.value.message and "'also-missing'" in err.value.message
