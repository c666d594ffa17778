"""Staging local files for `qa add`: a file whose name the corpus cannot carry is refused with a message, and
the files beside it are staged."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import CORPUS

from qa.errors import BadInput
from qa.library.uploads import safe_name, stage_files


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="macOS refuses a name that is no UTF-8")
def test_a_local_file_whose_name_is_no_utf8_is_refused_and_the_others_are_staged(tmp_path: Path) -> None:
    """Its name would be the document's id, which no JSON answer carries: `qa add` crashed on one."""
    seed = sorted(CORPUS.glob("*.txt"))
    sources = tmp_path / "papers"
    sources.mkdir()
    odd = Path(os.fsdecode(os.fsencode(sources) + b"/added \xfe.txt"))
    shutil.copyfile(seed[0], odd)
    fine = sources / "fine.txt"
    shutil.copyfile(seed[1], fine)
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()

    staged, errors = stage_files([odd, fine], index, corpus, max_bytes=20_000_000, max_pages=500)
    assert [s.name for s in staged] == ["fine.txt"] and staged[0].document.id == "fine"
    assert errors == [
        f"{sources}/added \\xfe.txt: added \\xfe.txt: the file name is not UTF-8 text; rename the file"
    ]
    with pytest.raises(BadInput, match="not UTF-8"):
        safe_name(odd.name)
    assert list(corpus.iterdir()) == []  # nothing reaches the corpus folder before the change lands
