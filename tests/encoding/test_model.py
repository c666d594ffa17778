"""A build's texts embedded in length-sorted passes: the same vectors, in the same order, as one by one."""

from __future__ import annotations

import numpy as np
from conftest import CORPUS

from qa.corpus import load_corpus
from qa.encoding import Embedder
from qa.index.build import chunk_corpus, sentence_table
from qa.settings import Settings


def test_encode_many_gives_each_text_its_own_vector_in_order(embedder: Embedder) -> None:
    corpus = load_corpus(CORPUS)
    passages = chunk_corpus(Settings(), embedder, corpus)[:12]
    sentences = list(sentence_table(passages).texts(corpus))[:30]
    texts = [t for pair in zip([p.embed_text for p in passages], sentences, strict=False) for t in pair]
    texts += sentences[len(passages) :] + [texts[0]]  # short and long interleaved, one text twice
    lengths = embedder.count_tokens(texts)
    assert min(lengths) < 20 and max(lengths) > 150  # a real mix of sentence and passage lengths
    one_by_one = np.vstack([embedder.encode([t]) for t in texts])
    for budget, workers in ((2048, 1), (2048, 2), (64, 2)):  # 64: long passages go one to a pass
        many = embedder.encode_many(texts, batch_tokens=budget, workers=workers)
        assert many.shape == (len(texts), embedder.dim) and many.dtype == np.float32
        assert np.allclose(many, one_by_one, atol=1e-5)
    assert embedder.encode_many([]).shape == (0, embedder.dim)


def test_a_bfloat16_build_gives_the_float32_vectors_to_within_1e_4_in_cosine(embedder: Embedder) -> None:
    """``QA_EMBED_PRECISION=bfloat16``: a build's passes under bfloat16 autocast, the weights untouched."""
    import pytest

    from qa.errors import QAError

    corpus = load_corpus(CORPUS)
    texts = [p.embed_text for p in chunk_corpus(Settings(), embedder, corpus)[:16]]
    half = Embedder("all-MiniLM-L6-v2", threads=1, precision="bfloat16")
    low, full = half.encode_many(texts), embedder.encode_many(texts)
    assert low.dtype == np.float32 and np.allclose(np.linalg.norm(low, axis=1), 1, atol=1e-5)
    cosines = (low * full).sum(axis=1)
    assert cosines.min() > 0.9999 and not np.array_equal(low, full)  # bfloat16 passes: close, not the same
    assert np.array_equal(half.encode(texts[:2]), embedder.encode(texts[:2]))  # questions stay float32
    with pytest.raises(QAError, match="precision 'float8'"):
        Embedder("all-MiniLM-L6-v2", precision="float8")
