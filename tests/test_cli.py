"""`qa` in process through main(argv): index, search and ask on a small real corpus, and bad input as an
`error:` line with a non-zero exit code, never a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
from conftest import CORPUS, DOC_003

from qa.cli import main
from qa.index.build import current_path
from qa.index.manifest import IndexManifest
from qa.index.store import SearchIndex
from qa.settings import Settings


def _excerpt() -> str:
    """The opening paragraphs of a seed document: real text with headings, small enough to index quickly."""
    paragraphs = (CORPUS / f"{DOC_003}.txt").read_text(encoding="utf-8").split("\n\n")
    return "\n\n".join(paragraphs[:12]) + "\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    corpus, index_dir = tmp_path_factory.mktemp("corpus"), tmp_path_factory.mktemp("index")
    (corpus / "excerpt.txt").write_text(_excerpt(), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["index", "--quiet", "--corpus", str(corpus), "--index-dir", str(index_dir)]) == 0
    return corpus, index_dir, out.getvalue()


def _flags(built: tuple[Path, Path, str]) -> list[str]:
    return ["--corpus-dir", str(built[0]), "--index-dir", str(built[1])]


def test_index_reports_what_it_built_and_skips_an_up_to_date_index(
    built: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, index_dir, printed = built
    m = IndexManifest.read(current_path(index_dir))
    found = re.search(r"indexed (\d+) documents into (\d+) passages", printed)
    assert found and (int(found[1]), int(found[2])) == (1, m.passages) and m.passages > 1
    before = current_path(index_dir).resolve()
    assert (
        main(["index", "--if-stale", "--quiet", "--corpus", str(corpus), "--index-dir", str(index_dir)]) == 0
    )
    assert "up to date" in capsys.readouterr().out and current_path(index_dir).resolve() == before


def test_search_finds_a_passage_by_its_own_words(
    built: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(corpus_dir=built[0], index_dir=built[1])
    passages = SearchIndex.load(settings).passages
    target = max(passages, key=lambda p: len(p.text))
    query = " ".join(target.text.split()[:12])
    assert main(["search", query, "--json", "-k", "3", *_flags(built)]) == 0
    hits = json.loads(capsys.readouterr().out)
    spans = [tuple(int(x) for x in h["id"].rpartition(":")[2].split("-")) for h in hits]
    # overlapping passages come back merged into one hit that spans them
    assert 1 <= len(hits) <= 3 and spans[0][0] <= target.start and target.end <= spans[0][1]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert main(["search", query, "-k", "2", *_flags(built)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1. [") and "(excerpt:" in lines[0]
    assert main(["search", "zzxqv qqxzv", "--mode", "bm25", *_flags(built)]) == 0
    assert capsys.readouterr().out.strip() == "no passages matched"


def test_ask_prints_an_answer_with_its_passages(
    built: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = (built[0] / "excerpt.txt").read_text(encoding="utf-8")
    assert main(["ask", "What causes resistance to immunotherapy?", "--json", *_flags(built)]) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["answer"] and response["passages"]
    for p in response["passages"]:
        assert 0 <= p["start"] < p["end"] <= len(text) and p["url"].startswith("http://")
    assert main(["ask", "What causes resistance to immunotherapy?", *_flags(built)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^(Sources|Related passages):$", out, re.M) and "[1] " in out


def test_ask_works_where_an_event_loop_already_runs(
    built: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A notebook's kernel (or a browser driver) runs an event loop in the thread that calls the command:
    ``asyncio.run`` refuses to start another there, so the question runs in a thread of its own."""
    import asyncio

    async def cell() -> int:
        return main(["ask", "What causes resistance to immunotherapy?", "--json", *_flags(built)])

    assert asyncio.run(cell()) == 0
    assert json.loads(capsys.readouterr().out)["passages"]


@pytest.mark.parametrize("case", ["missing_folder", "dangling_link"])
def test_a_bad_corpus_is_one_error_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    corpus = tmp_path / "corpus"
    if case == "dangling_link":
        corpus.mkdir()
        (corpus / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    code = main(["index", "--quiet", "--corpus", str(corpus), "--index-dir", str(tmp_path / "index")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: ") and str(corpus) in err
    assert not current_path(tmp_path / "index").exists()


def test_an_unreadable_file_beside_good_ones_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "excerpt.txt").write_text(_excerpt(), encoding="utf-8")
    (corpus / "scan.txt").write_bytes(bytes(range(256)) * 8)
    code = main(["index", "--quiet", "--corpus", str(corpus), "--index-dir", str(tmp_path / "index")])
    captured = capsys.readouterr()
    assert code == 0 and "indexed 1 documents" in captured.out
    assert re.search(r"^warning: skipped .*scan\.txt", captured.err, re.M)


def test_a_missing_index_and_a_bad_setting_are_error_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["search", "melanoma", "--corpus-dir", str(CORPUS), "--index-dir", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err
    # serving without an index: one line before any worker starts, not a startup traceback
    code = main(["serve", "--corpus-dir", str(CORPUS), "--index-dir", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: cannot serve: no index at") and "--build-if-needed" in err
    code = main(["index", "--chunk-max-tokens", "999", "--index-dir", str(tmp_path / "i")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: invalid setting: chunk_max_tokens")
    with pytest.raises(SystemExit) as exited:
        main(["no-such-command"])
    assert exited.value.code == 2
