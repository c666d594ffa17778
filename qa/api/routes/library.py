"""Adding, replacing and removing documents while serving, behind the API key (X-API-Key).

The upload is copied (bounded) into a staging folder, parsed, and only then built into the next index from
the current one; the new index is swapped in under the change lock while requests go on being answered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, File, Path, Request, Response, UploadFile

from qa.api.deps import ServicesDep
from qa.api.follow import serve_current
from qa.api.library_models import ChangeOut, DocumentRecord
from qa.api.present import document_summary
from qa.api.routes.admin import ApiKeyDep
from qa.errors import BadInput, QAError, ReloadConflict
from qa.library.changes import ChangeResult, add_documents, remove_documents, replace_document
from qa.library.uploads import Staged, copy_bounded, parse_staged, safe_name, staging_folder
from qa.services import Services

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/documents", tags=["documents"])
DocId = Annotated[str, Path(min_length=1, max_length=200)]
Upload = Annotated[UploadFile, File(description="The paper: .pdf, .xml (JATS), .md or .txt.")]


def _stage(services: Services, upload: UploadFile, target_name: str | None = None) -> Staged:
    settings = services.settings
    name = safe_name(upload.filename)
    folder = staging_folder(FsPath(settings.index_dir))
    max_bytes = int(settings.upload_max_mb * 1e6)
    digest = copy_bounded(upload.file, folder / name, max_bytes)
    return parse_staged(
        folder / name,
        digest,
        FsPath(settings.corpus_dir),
        max_bytes=max_bytes,
        max_pages=settings.upload_max_pages,
        target_name=target_name,
    )


def _swapper(request: Request) -> Callable[[FsPath], None]:
    """A callback that loads the committed build and swaps it in (run under the change lock)."""

    def swap(build: FsPath) -> None:
        lock: threading.Lock = request.app.state.reload_lock
        with lock:  # the follower may have swapped it in already: then nothing is loaded twice
            try:
                _, serving = serve_current(request.app, check_corpus=False)
            except QAError as exc:
                raise ReloadConflict(f"the change was built but could not be loaded: {exc.message}") from exc
            log.info("serving %s after a document change", serving.index.path.name)

    return swap


def _record(request: Request, doc_id: str, status: str, result: ChangeResult) -> DocumentRecord:
    services: Services = request.app.state.services
    summary = document_summary(services.index, services.index.document(doc_id))
    change = result.summary()
    return DocumentRecord(
        **summary.model_dump(),
        status=status,
        change=ChangeOut(**{k: change[k] for k in ChangeOut.model_fields}),
    )


@router.post("", status_code=201, response_model=DocumentRecord, responses={200: {"model": DocumentRecord}})
def add_document(
    request: Request, response: Response, services: ServicesDep, _: ApiKeyDep, file: Upload
) -> DocumentRecord:
    """Add a paper (multipart field `file`): 201 with its record once it is searchable; the same bytes again:
    200 with the record already indexed. A file with the id of another document is refused (409)."""
    staged = _stage(services, file)
    swap = _swapper(request)
    result = add_documents(services.settings, services.embedder, [staged], on_commit=swap)
    if result.existing:
        response.status_code = 200
        return _record(request, result.existing[0], "exists", result)
    return _record(request, result.added[0], "added", result)


@router.put("/{doc_id}", response_model=DocumentRecord)
def replace(
    doc_id: DocId, request: Request, services: ServicesDep, _: ApiKeyDep, file: Upload
) -> DocumentRecord:
    """Replace a document by a new file; it keeps its id (404 when there is no such document)."""
    old = services.index.document(doc_id)
    name = safe_name(file.filename)
    target = FsPath(old.meta.file).with_suffix(FsPath(name).suffix.lower()).as_posix()
    staged = _stage(services, file, target_name=target)
    if staged.document.id != doc_id:
        raise BadInput(f"{name}: would be stored as {target} with id '{staged.document.id}', not '{doc_id}'")
    swap = _swapper(request)
    result = replace_document(services.settings, services.embedder, doc_id, staged, on_commit=swap)
    return _record(request, doc_id, "exists" if result.existing else "replaced", result)


@router.delete("/{doc_id}", status_code=204, response_class=Response)
def remove(doc_id: DocId, request: Request, services: ServicesDep, _: ApiKeyDep) -> Response:
    """Remove a document from the index and the corpus folder (404 when there is no such document)."""
    services.index.document(doc_id)
    swap = _swapper(request)
    remove_documents(services.settings, services.embedder, [doc_id], on_commit=swap)
    return Response(status_code=204)
