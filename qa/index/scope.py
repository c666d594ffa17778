"""A document filter: the document ids a question, a search or a trial list is restricted to, checked.

Ids are the indexed documents' ids (a file's name without its extension, unless manifest.json gives one).
They arrive as a list (the JSON body) or as query values, each of which may hold several ids separated by
commas (``?documents=a,b&documents=c``); a value that is itself an indexed id is taken whole, so an id with
a comma in it still works.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from qa.errors import UnknownDocument

DocumentIds = tuple[str, ...]


def split_ids(values: Iterable[str], known: Collection[str]) -> list[str]:
    """Every id in ``values`` in order, once each: comma-separated values split, blanks dropped."""
    ids: list[str] = []
    for value in values:
        value = value.strip()
        parts = [value] if value in known else [p.strip() for p in value.split(",")]
        ids.extend(p for p in parts if p and p not in ids)
    return ids


def check_documents(values: Iterable[str] | None, known: Collection[str]) -> DocumentIds | None:
    """The ids ``values`` name (empty when they name none: no restriction), or None when no filter was
    given; UnknownDocument (404, the error shape) names every id the index does not hold."""
    if values is None:
        return None
    ids = split_ids(values, known)
    unknown = [i for i in ids if i not in known]
    if unknown:
        shown = ", ".join(f"'{i}'" for i in unknown)
        noun = "document id" if len(unknown) == 1 else "document ids"
        raise UnknownDocument(
            f"unknown {noun} {shown}; GET /api/documents lists the indexed ones",
            detail={"unknown": unknown},
        )
    return tuple(ids)
