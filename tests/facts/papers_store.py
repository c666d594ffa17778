"""One fact store built from every real paper of shared/papers (JATS and PDF), as an index build makes it."""

from __future__ import annotations

from functools import cache

from readers.paperset import PAPERS, PDF_PAPERS, XML_PAPERS, require_papers, word_count

from qa.chunking import chunk_document
from qa.corpus import load_document
from qa.documents import Document
from qa.facts import FactStore, Trial, Vocabulary, build_facts


@cache
def papers_store() -> tuple[FactStore, dict[str, Document]]:
    require_papers()
    docs = [load_document(p, PAPERS, None, 20_000_000) for p in [*XML_PAPERS, *PDF_PAPERS]]
    passages = [p for d in docs for p in chunk_document(d, word_count, max_tokens=200, overlap=20)]
    return build_facts(docs, passages, Vocabulary.load()), {d.id: d for d in docs}


def trials_of(store: FactStore, doc_id: str) -> list[Trial]:
    return [t for t in store.trials if t.primary.doc_id == doc_id]
