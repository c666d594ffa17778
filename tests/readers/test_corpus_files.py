"""The corpus folder's document files, listed in the order a build reads them (``corpus_files``), against
their definition: files below the folder, links to folders not followed, dot-named and unsupported files left
out, in the order of their paths' parts (a folder's files at the folder's name among its siblings)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path, PurePosixPath

import pytest
from conftest import CORPUS
from readers.paperset import PDF_PAPERS, XML_PAPERS

import qa.listing
from qa.listing import corpus_files
from qa.readers import reader_for
from qa.text_rules import is_utf8_name


def _by_definition(root: Path) -> list[str]:
    """``os.walk``'s files with names of UTF-8 text (it follows no link to a folder), filtered, sorted by their paths' parts."""
    found = []
    for folder, _, files in os.walk(root, followlinks=False):
        for name in files:
            if not name.startswith(".") and reader_for(Path(name)) is not None:
                rel = (Path(folder) / name).relative_to(root).as_posix()
                if is_utf8_name(rel):
                    found.append(rel)
    return sorted(found, key=lambda rel: PurePosixPath(rel).parts)


@pytest.mark.parametrize("run", [qa.listing.RUN, 1, 2, 7])
def test_corpus_files_are_listed_in_the_order_of_their_paths_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: int
) -> None:
    """At ``RUN`` and with a folder's names sorted a few at a time (runs written out and merged)."""
    monkeypatch.setattr(qa.listing, "RUN", run)
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
        *((f"many/{(k * 37) % 101:03d}-{k}.txt", text) for k in range(40)),  # more names than a run
        ("many/050/inner.txt", text),  # a folder among them
        ("many/0500.txt", text),
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / rel)
    (elsewhere / "sub").mkdir(parents=True)
    shutil.copyfile(text, elsewhere / "sub" / "outside.txt")
    (root / "linked folder").symlink_to(elsewhere, target_is_directory=True)  # not followed
    (root / "linked.txt").symlink_to(root / "a9.txt")  # a link to a file is a file
    (root / "gone.txt").symlink_to(tmp_path / "nowhere.txt")  # listed; reading it says it is gone
    (root / "empty folder").mkdir()
    if sys.platform.startswith("linux"):  # a name that is no UTF-8 (macOS refuses one)
        shutil.copyfile(text, os.fsencode(root) + b"/odd \xff name.txt")
        os.mkdir(os.fsencode(root) + b"/odd \xfe folder")
        shutil.copyfile(text, os.fsencode(root) + b"/odd \xfe folder/inside.txt")

    files = corpus_files(root)
    expected = _by_definition(root)
    assert list(files.names) == expected and len(files) == len(files.names) == len(expected)
    assert files.names[-1] == expected[-1] and files.names[3:9] == expected[3:9]
    assert files.names[::-5] == expected[::-5] and files.names[9:3] == [] and files[-2] == root / expected[-2]
    assert [p.relative_to(root).as_posix() for p in files] == expected and files[1:3] == list(files)[1:3]
    assert expected[:5] == [".checkpoints/inside.txt", "B upper.txt", "UPPER.TXT", "a/b.xml", "a/c/d.pdf"]
    assert "gone.txt" in expected and "linked.txt" in expected
    if sys.platform.startswith("linux"):  # the names that are no UTF-8, each said
        assert sorted(files.skipped) == [
            f"{root}/odd \\xfe folder: the name is not UTF-8 text; rename the folder to read it",
            f"{root}/odd \\xff name.txt: the name is not UTF-8 text; rename the file to read it",
        ]
    else:
        assert files.skipped == []
    assert not any("outside" in rel or "hidden" in rel or rel.endswith(".docx") for rel in expected)
    assert expected.index("a10.txt") < expected.index("a9.txt") < expected.index("étude 1.txt")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="macOS refuses a name that is no UTF-8")
def test_a_file_whose_name_is_no_utf8_is_skipped_with_a_message_and_the_rest_are_read(tmp_path: Path) -> None:
    """Its name would be the document's id and file, which no JSON answer carries: it used to crash the build."""
    from qa.corpus import corpus_digest, load_corpus

    root = tmp_path / "corpus"
    root.mkdir()
    seed = sorted(CORPUS.glob("*.txt"))
    for path in seed:
        shutil.copyfile(path, root / path.name)
    shutil.copyfile(seed[0], os.fsencode(root) + b"/copy \xe9.txt")  # Latin-1's é

    corpus = load_corpus(root)
    try:
        assert [d.meta.file for d in corpus.documents] == [p.name for p in seed]
        assert corpus.skipped == [
            f"{root}/copy \\xe9.txt: the name is not UTF-8 text; rename the file to read it"
        ]
        assert corpus_digest(root) == corpus.hash
    finally:
        corpus.close()
