"""The real papers of shared/papers (beside the checkout, or beside the folder of git worktrees)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from qa.library.uploads import Staged
    from qa.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
PAPERS = next(
    (p for p in (SHARED / "papers", ROOT.parent.parent / "shared" / "papers") if p.is_dir()),
    SHARED / "papers",
)
XML_PAPERS = sorted(PAPERS.glob("*.xml"))
PDF_PAPERS = sorted(PAPERS.glob("*.pdf"))


def require_papers() -> Path:
    if not PAPERS.is_dir():
        pytest.fail(f"{PAPERS} is missing: the real papers are part of the test data")
    return PAPERS


def word_count(texts: list[str]) -> list[int]:
    """A token counter for chunking tests that need no model: words plus [CLS]/[SEP]."""
    return [len(t.split()) + 2 for t in texts]


def stage_paper(settings: Settings, name: str) -> list[Staged]:
    """One real paper staged for an add to ``settings``' index, as an upload would be."""
    from qa.library.uploads import stage_files

    staged, errors = stage_files(
        [require_papers() / name],
        Path(settings.index_dir),
        Path(settings.corpus_dir),
        max_bytes=int(settings.upload_max_mb * 1e6),
        max_pages=settings.upload_max_pages,
    )
    assert not errors and len(staged) == 1
    return staged
