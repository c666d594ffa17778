"""A build's texts embedded in length-sorted passes: the same vectors, in the same order, as one by one."""

from __future__ import annotations

import numpy as np
from conftest import CORPUS

from qa.corpus import load_corpus
from qa.encoding import Embedder
from qa.index.build import chunk_corpus, sentence_table, sentence_texts
from qa.settings import Settings


def test_encode_many_gives_each_text_its_own_vector_in_order(embedder: Embedder) -> None:
    corpus = load_corpus(CORPUS)
    passages = chunk_corpus(Settings(), embedder, corpus)[:12]
    sentences = sentence_texts(corpus, sentence_table(passages)[0])[:30]
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
