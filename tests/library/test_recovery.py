"""A change killed part way: the previous build keeps serving, and a restart finishes or undoes the journal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from readers.paperset import require_papers

from qa.index.build import BUILDS, current_path, swap_current
from qa.index.store import SearchIndex
from qa.library.journal import JOURNAL, Moves, _write_journal, recover
from qa.settings import Settings


def _copies(tmp_path: Path, settings: Settings) -> tuple[Path, Path]:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(settings.corpus_dir, corpus)
    shutil.copytree(settings.index_dir, index, symlinks=True)
    return corpus, index


def _add_paper() -> list[str]:
    return [
        sys.executable,
        "-m",
        "qa.cli",
        "add",
        str(require_papers() / "cii2015-killer-t-dc-lung-phase3.xml"),
    ]


@pytest.mark.slow
def test_kill_9_during_an_add_leaves_the_previous_build_serving(
    tmp_path: Path, settings: Settings, built_index: Path
) -> None:
    corpus, index = _copies(tmp_path, settings)
    before_current = os.readlink(current_path(index))
    before_files = sorted(p.name for p in corpus.iterdir())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index)}
    proc = subprocess.Popen(
        _add_paper(), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not list((index / BUILDS).glob("*.partial")) and proc.poll() is None:  # the next build has begun
        assert time.monotonic() < deadline, "the add never started a build"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the build (parsing, embedding)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the add finished before it could be killed"
    assert os.readlink(current_path(index)) == before_current
    assert sorted(p.name for p in corpus.iterdir()) == before_files
    restarted = Settings(corpus_dir=corpus, index_dir=index)
    loaded = SearchIndex.load(restarted)  # the previous build, complete and verified
    assert "cii2015-killer-t-dc-lung-phase3" not in loaded.documents
    assert not current_path(index).resolve().name.endswith(".partial")
    again = subprocess.run(  # the next change clears what the killed one left and lands
        _add_paper(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr
    assert "cii2015-killer-t-dc-lung-phase3" in SearchIndex.load(restarted).documents
    assert not list((index / BUILDS).glob("*.partial"))


def _journal_case(tmp_path: Path) -> tuple[Path, Path, Path, Path, Moves]:
    index, corpus = tmp_path / "index", tmp_path / "corpus"
    old, new = index / BUILDS / "20260101T000000-old", index / BUILDS / "20260102T000000-new"
    for folder in (old, new, corpus, index / "staging"):
        folder.mkdir(parents=True)
    swap_current(index, old)
    staged, placed = index / "staging" / "paper.xml", corpus / "paper.xml"
    staged.write_text("<article/>", encoding="utf-8")
    return index, old, new, placed, Moves(into=[(staged, placed)])


def test_a_journal_without_the_swap_is_undone(tmp_path: Path) -> None:
    index, old, new, placed, moves = _journal_case(tmp_path)
    _write_journal(index, {"build": new.name, "into": [[str(a), str(b)] for a, b in moves.into], "out": []})
    moves.into[0][0].rename(placed)  # killed after moving the upload in, before swapping current
    assert recover(index) == "undone"
    assert current_path(index).resolve() == old.resolve()
    assert not placed.exists() and moves.into[0][0].exists()  # the corpus is as it was
    assert not new.exists() and not (index / JOURNAL).exists()


def test_a_journal_after_the_swap_is_finished(tmp_path: Path) -> None:
    index, _old, new, placed, moves = _journal_case(tmp_path)
    _write_journal(index, {"build": new.name, "into": [[str(a), str(b)] for a, b in moves.into], "out": []})
    swap_current(index, new)  # killed after the swap, before the upload moved into the corpus
    assert recover(index) == "finished"
    assert current_path(index).resolve() == new.resolve()
    assert placed.read_text(encoding="utf-8") == "<article/>" and not moves.into[0][0].exists()
    assert not (index / JOURNAL).exists()


def test_no_journal_means_nothing_to_recover(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    assert recover(index) is None
