"""The core's own exceptions; the API turns them into one JSON error shape, the CLI into one line."""

from __future__ import annotations


class QAError(Exception):
    """Base class: a message meant for the user, a stable machine code and the HTTP status it maps to."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, detail: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class BadInput(QAError):
    code = "bad_input"
    status = 400


class NotFound(QAError):
    code = "not_found"
    status = 404


class UnknownDocument(NotFound):
    """A document filter names a document id the index does not hold; ``detail`` lists the unknown ids."""

    code = "unknown_document"


class CorpusError(QAError):
    """A document or corpus folder that cannot be read; names the file."""

    code = "corpus_error"
    status = 400


class IndexMissing(QAError):
    code = "index_missing"
    status = 503


class IndexMismatch(QAError):
    """The index on disk was built from other settings or another corpus."""

    code = "index_mismatch"
    status = 503


class BuildFailed(QAError):
    """A part of an index build ended without finishing (its process was killed)."""

    code = "build_failed"


class IndexCorrupt(QAError):
    code = "index_corrupt"
    status = 503


class Forbidden(QAError):
    code = "forbidden"
    status = 403


class Unauthorized(QAError):
    code = "unauthorized"
    status = 401


class ReloadConflict(QAError):
    """A rebuilt index could not be swapped in; the one already loaded keeps serving."""

    code = "reload_failed"
    status = 409


class ChangeConflict(QAError):
    """Another build or document change holds the index folder's lock; nothing was changed."""

    code = "change_conflict"
    status = 409


class DuplicateDocument(QAError):
    """A new file would have the id of a document already indexed (different bytes)."""

    code = "duplicate_document"
    status = 409


class TooLarge(QAError):
    """An upload over a size or page limit."""

    code = "too_large"
    status = 413


class DatabaseUnavailable(QAError):
    """The conversation database (QA_DATABASE_URL) cannot be reached or used; nothing was stored."""

    code = "database_unavailable"
    status = 503
