"""`qa add`, `qa remove` and `qa documents`: the library's changes from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qa.errors import CorpusError
from qa.index.build import stage_line
from qa.library.changes import ChangeResult, add_documents, indexed_documents, remove_documents
from qa.library.uploads import expand_paths, stage_files
from qa.settings import Settings

RELOAD_HINT = "a running server serves it within QA_INDEX_POLL_SECONDS (at once after POST /api/admin/reload)"


def _report(result: ChangeResult) -> None:
    for doc_id in result.existing:
        print(f"unchanged: {doc_id} (the same file is already indexed)")
    b = result.build
    if b is None:
        return
    for doc_id in result.added:
        print(f"added: {doc_id}")
    for doc_id in result.removed:
        print(f"removed: {doc_id}")
    print(
        f"index now {b.documents} documents, {b.passages} passages; embedded {b.passages_embedded} passages and "
        f"{b.sentences_embedded} sentences in {b.seconds:.1f}s -> {b.build.name}; {RELOAD_HINT}"
    )
    print(f"stages: {stage_line(b.stage_seconds)}")


def add(settings: Settings, paths: list[Path]) -> int:
    from qa.encoding import Embedder

    files = expand_paths(paths)
    missing = [p for p in paths if not p.exists()]
    for p in missing:
        print(f"error: {p}: no such file or folder", file=sys.stderr)
    files = [f for f in files if f.exists()]
    if not files:
        if not missing:
            print(f"error: {', '.join(map(str, paths))}: no files a reader handles", file=sys.stderr)
        return 1
    staged, errors = stage_files(
        files,
        Path(settings.index_dir),
        Path(settings.corpus_dir),
        max_bytes=int(settings.upload_max_mb * 1e6),
        max_pages=settings.upload_max_pages,
    )
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    ids: dict[str, Path] = {}
    for s in list(staged):
        if s.document.id in ids:
            print(
                f"error: {s.name}: the same id '{s.document.id}' as {ids[s.document.id]}; refused",
                file=sys.stderr,
            )
            staged.remove(s)
            errors.append(s.name)
        ids.setdefault(s.document.id, s.path)
    if staged:
        embedder = Embedder(
            settings.model, threads=settings.torch_threads, precision=settings.embed_precision
        )
        _report(add_documents(settings, embedder, staged))
    return 1 if errors or missing else 0


def remove(settings: Settings, doc_ids: list[str]) -> int:
    from qa.encoding import Embedder

    embedder = Embedder(settings.model, threads=settings.torch_threads, precision=settings.embed_precision)
    _report(remove_documents(settings, embedder, doc_ids))
    return 0


def documents_table(settings: Settings, *, as_json: bool = False) -> int:
    rows = indexed_documents(settings)
    if not rows:
        raise CorpusError(f"{settings.index_dir}: no index; build one with `qa index`")
    if as_json:
        print(json.dumps([{"id": i, "file": f, "passages": n} for i, f, n in rows], indent=2))
        return 0
    width = max(len("id"), *(len(i) for i, _, _ in rows))
    fwidth = max(len("file"), *(len(f) for _, f, _ in rows))
    print(f"{'id':<{width}}  {'file':<{fwidth}}  passages")
    for doc_id, file, passages in rows:
        print(f"{doc_id:<{width}}  {file:<{fwidth}}  {passages:>8}")
    return 0
