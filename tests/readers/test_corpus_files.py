"""The corpus folder's document files, listed in the order a build reads them (``corpus_files``), against
their definition: files below the folder, links to folders not followed, dot-named and unsupported files left
out, in the order of their paths' parts (a folder's files at the folder's name among its siblings)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from conftest import CORPUS
from readers.paperset import PDF_PAPERS, XML_PAPERS

from qa.corpus import corpus_files
from qa.readers import reader_for


def _by_definition(root: Path) -> list[str]:
    """``os.walk``'s files (it follows no link to a folder), filtered, sorted by their paths' parts."""
    found = []
    for folder, _, files in os.walk(root, followlinks=False):
        for name in files:
            if not name.startswith(".") and reader_for(Path(name)) is not None:
                found.append((Path(folder) / name).relative_to(root).as_posix())
    return sorted(found, key=lambda rel: PurePosixPath(rel).parts)


def test_corpus_files_are_listed_in_the_order_of_their_paths_parts(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    text, xml, pdf = next(iter(sorted(CORPUS.glob("*.txt")))), XML_PAPERS[0], PDF_PAPERS[0]
    for rel, source in [
        ("a.txt", text),
        ("a/b.xml", xml),  # the folder a's files come before a.txt, as ("a", ...) < ("a.txt",)
        ("a-b.txt", text),
        ("a/c/d.pdf", pdf),
        ("a10.txt", text),
        ("a9.txt", text),
        ("B upper.txt", text),
        ("étude 1.txt", text),
        ("nested/deeper/deepest/paper.xml", xml),
        (".hidden.txt", text),  # a dot-name: left out
        (".checkpoints/inside.txt", text),  # a dot-named folder's files are read
        ("notes.docx", text),  # no reader: left out
        ("UPPER.TXT", text),  # suffixes in any case
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / rel)
    (elsewhere / "sub").mkdir(parents=True)
    shutil.copyfile(text, elsewhere / "sub" / "outside.txt")
    (root / "linked folder").symlink_to(elsewhere, target_is_directory=True)  # not followed
    (root / "linked.txt").symlink_to(root / "a9.txt")  # a link to a file is a file
    (root / "gone.txt").symlink_to(tmp_path / "nowhere.txt")  # listed; reading it says it is gone
    (root / "empty folder").mkdir()

    files = corpus_files(root)
    expected = _by_definition(root)
    assert list(files.names) == expected
    assert [p.relative_to(root).as_posix() for p in files] == expected and files[1:3] == list(files)[1:3]
    assert expected[:5] == [".checkpoints/inside.txt", "B upper.txt", "UPPER.TXT", "a/b.xml", "a/c/d.pdf"]
    assert "gone.txt" in expected and "linked.txt" in expected
    assert not any("outside" in rel or "hidden" in rel or rel.endswith(".docx") for rel in expected)
    assert expected.index("a10.txt") < expected.index("a9.txt") < expected.index("étude 1.txt")
