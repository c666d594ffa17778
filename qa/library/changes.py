"""Add, replace and remove documents: one change at a time (a file lock across processes), built from the
current index, committed atomically; what the CLI's `qa add`/`qa remove` and the API's document routes call."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qa.encoding import Embedder
from qa.errors import NotFound
from qa.index.build import Stopwatch, build_lock, prune_builds
from qa.library.incremental import TRASH, NextBuild, Previous, build_next
from qa.library.journal import commit, recover
from qa.library.uploads import Staged
from qa.settings import Settings

log = logging.getLogger(__name__)
OnCommit = Callable[[Path], None]


@dataclass
class ChangeResult:
    """What a change did: ids added, already present (same bytes), removed; the build now current."""

    added: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    build: NextBuild | None = None  # None when nothing changed

    def summary(self) -> dict[str, object]:
        b = self.build
        return {
            "added": self.added,
            "existing": self.existing,
            "removed": self.removed,
            "build": b.build.name if b else None,
            "documents": b.documents if b else None,
            "passages": b.passages if b else None,
            "passages_embedded": b.passages_embedded if b else 0,
            "sentences_embedded": b.sentences_embedded if b else 0,
            "seconds": b.seconds if b else 0.0,
            "stage_seconds": b.stage_seconds if b else {},
        }


def recover_if_idle(index_dir: Path) -> str | None:
    """Finish or undo a change a killed process left, unless another process is changing the index now."""
    from qa.errors import ChangeConflict

    if not Path(index_dir).exists():
        return None
    try:
        with build_lock(Path(index_dir)):
            return recover(Path(index_dir))
    except ChangeConflict:
        return None


def _run(
    settings: Settings,
    embedder: Embedder,
    result: ChangeResult,
    add: list[Staged],
    remove: list[str],
    reason: str,
    on_commit: OnCommit | None,
    previous: Previous | None = None,
) -> ChangeResult:
    index_dir = Path(settings.index_dir)
    if add or remove:
        result.build = build = build_next(
            settings, embedder, add=add, remove=remove, reason=reason, previous=previous
        )
        clock = Stopwatch()
        commit(index_dir, build.build, build.moves)
        prune_builds(index_dir, keep={build.build.name})
        shutil.rmtree(index_dir / TRASH, ignore_errors=True)
        clock.lap("commit")
        if on_commit is not None:
            on_commit(build.build)
            clock.lap("load and swap")
        build.stage_seconds.update(clock.seconds)
    result.added = [s.document.id for s in add]
    result.removed = [r for r in remove if r not in result.added]
    return result


def add_documents(
    settings: Settings,
    embedder: Embedder,
    staged: list[Staged],
    *,
    on_commit: OnCommit | None = None,
) -> ChangeResult:
    """Add parsed uploads; one whose bytes are already indexed is reported as existing, not added twice.

    ``on_commit`` runs with the new build, still under the lock (a server swaps it in there, so two changes
    in a row are served in order)."""
    index_dir = Path(settings.index_dir)
    with build_lock(index_dir, wait=settings.change_wait_seconds):
        recover(index_dir)
        previous = Previous.load(index_dir, embedder, Path(settings.corpus_dir))
        by_bytes = {
            sha: previous.documents[rel].id
            for rel, sha in previous.sources.items()
            if rel in previous.documents
        }
        result = ChangeResult()
        fresh: list[Staged] = []
        for s in staged:
            if s.sha256 in by_bytes:
                result.existing.append(by_bytes[s.sha256])
            elif s.sha256 not in {f.sha256 for f in fresh}:
                fresh.append(s)
        return _run(settings, embedder, result, fresh, [], "add", on_commit, previous)


def remove_documents(
    settings: Settings, embedder: Embedder, doc_ids: list[str], *, on_commit: OnCommit | None = None
) -> ChangeResult:
    index_dir = Path(settings.index_dir)
    with build_lock(index_dir, wait=settings.change_wait_seconds):
        recover(index_dir)
        known = {
            d.id for d in Previous.load(index_dir, embedder, Path(settings.corpus_dir)).documents.values()
        }
        missing = [d for d in doc_ids if d not in known]
        if missing:
            raise NotFound(f"no document with id {', '.join(repr(m) for m in missing)}")
        return _run(settings, embedder, ChangeResult(), [], list(dict.fromkeys(doc_ids)), "remove", on_commit)


def replace_document(
    settings: Settings, embedder: Embedder, doc_id: str, staged: Staged, *, on_commit: OnCommit | None = None
) -> ChangeResult:
    """Swap document ``doc_id`` for a new file (same id); the same bytes again change nothing."""
    index_dir = Path(settings.index_dir)
    with build_lock(index_dir, wait=settings.change_wait_seconds):
        recover(index_dir)
        previous = Previous.load(index_dir, embedder, Path(settings.corpus_dir))
        old = next(((rel, d) for rel, d in previous.documents.items() if d.id == doc_id), None)
        if old is None:
            raise NotFound(f"no document with id '{doc_id}'")
        if previous.sources.get(old[0]) == staged.sha256:
            return ChangeResult(existing=[doc_id])
        return _run(settings, embedder, ChangeResult(), [staged], [doc_id], "replace", on_commit, previous)


def indexed_documents(settings: Settings) -> list[tuple[str, str, int]]:
    """(id, corpus file, passages) of the current build, read from disk without the model."""
    from qa.index.build import current_path
    from qa.index.tables import STORE_FILE, Documents, Passages, Store

    folder = current_path(Path(settings.index_dir))
    if not (folder / STORE_FILE).exists():
        return []
    store = Store(folder / STORE_FILE)
    passages = Passages(store)
    return [(m.id, m.file, passages.count(m.id)) for m in Documents(store).metas.values()]
