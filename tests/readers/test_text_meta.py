"""Plain-text documents: title, authors, journal, year and DOI where their first lines state them, nothing
invented where they do not."""

from __future__ import annotations

import json
from pathlib import Path

from paperset import PAPERS, require_papers

from qa.corpus import load_corpus, load_document
from qa.readers.text_meta import stated_metadata

ROOT = Path(__file__).resolve().parents[2]
CERMINE = "hindawi2010-heart-failure-rehab-focus-groups.cermine-fulltext.txt"


def test_a_papers_text_export_states_its_metadata_on_its_first_lines() -> None:
    """The CERMINE text of the Hindawi paper opens with publisher, journal, volume, DOI, title and byline."""
    require_papers()
    doc = load_document(PAPERS / CERMINE, PAPERS, None, 20_000_000)
    m = doc.meta
    assert m.title == "Patient Experiences of Structured Heart Failure Programmes"
    assert m.authors == ["Nuala E. Tully", "Karen M. Morgan", "Helen M. Burke", "Hannah M. McGee"]
    assert (m.journal, m.year, m.doi) == ("Rehabilitation Research and Practice", 2010, "10.1155/2010/157939")
    assert m.url == "https://doi.org/10.1155/2010/157939"
    assert m.title in doc.text and all(a in doc.text for a in m.authors)


def test_labelled_lines_and_a_citation_line() -> None:
    head = (
        "A new approach to overcoming resistance to immunotherapy: nanotechnology\n"
        "Jiayu Shao, Yanjun Jin and Chunxiang Jin\n"
        "Frontiers in Oncology 2023; 13:1210245\n"
        "doi: 10.3389/fonc.2023.1210245\n\nAbstract\nImmunotherapy for immune response has ushered in ..."
    )
    m = stated_metadata(head)
    assert m["title"].startswith("A new approach") and m["authors"] == [
        "Jiayu Shao",
        "Yanjun Jin",
        "Chunxiang Jin",
    ]
    assert (m["journal"], m["year"], m["doi"]) == ("Frontiers in Oncology", 2023, "10.3389/fonc.2023.1210245")
    labelled = stated_metadata(
        "Title: T cells in tumours\nAuthors: Smith J, Jones K\nYear: 2021\n\nIntroduction\nText."
    )
    assert labelled == {"title": "T cells in tumours", "authors": ["Smith J", "Jones K"], "year": 2021}


def test_a_text_that_opens_with_its_abstract_gets_no_invented_title(tmp_path: Path) -> None:
    """The seed reviews start with their abstract: no title, authors or DOI is stated, so none is made up;
    a manifest's empty fields do not erase what a file states."""
    for path in sorted((ROOT / "corpus").glob("*.txt")):
        assert stated_metadata(path.read_text(encoding="utf-8")) == {}
    (tmp_path / "paper.txt").write_text(
        "Immune checkpoints in melanoma\nAnna Berg, Carl Dahl\n\nIntroduction\n\nCheckpoint blockade works.\n",
        encoding="utf-8",
    )
    (tmp_path / "manifest.json").write_text(
        json.dumps({"documents": [{"id": "paper", "file": "paper.txt", "title": None, "description": "d"}]}),
        encoding="utf-8",
    )
    doc = load_corpus(tmp_path).documents[0]
    assert doc.meta.title == "Immune checkpoints in melanoma" and doc.meta.authors == [
        "Anna Berg",
        "Carl Dahl",
    ]
    assert doc.meta.description == "d"


def test_a_tie_between_stated_years_reads_the_same_in_every_process(tmp_path: Path) -> None:
    """Two years stated as often: the latest, whatever the process's string hashing (a tie once went by set
    order, so the corpus hash, and with it whether the index was stale, changed from one start to the next)."""
    import subprocess
    import sys

    from qa.readers.pdf_meta import stated_year

    assert stated_year("Cohorts of 2003 and 2008 were compared with those of 2003 and 2008.") == 2008
    assert stated_year("Seen in 2003, in 2003 again and in 2008.") == 2003
    (tmp_path / "cohorts.txt").write_text(
        "Outcomes of two cohorts\n\nPatients enrolled in 2003 were followed to 2008. The first was smaller.\n",
        encoding="utf-8",
    )
    code = "import sys; from pathlib import Path; from qa.corpus import load_corpus; print(load_corpus(Path(sys.argv[1])).hash)"
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            env={"PYTHONHASHSEED": str(seed), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(hashes) == 1


def test_the_streamed_corpus_digest_is_the_loaded_corpus_hash(tmp_path: Path) -> None:
    """The server checks its index against the corpus with ``corpus_digest`` (one document in memory at a
    time): the same hash as loading the corpus, for text, XML and PDF files, a manifest and a skipped file."""
    import shutil

    from qa.corpus import corpus_digest
    from qa.errors import CorpusError

    require_papers()
    for name in ["jitc2018-bth1677-nsclc-rct.xml", "bmchsr2014-quality-improvement-malawi.pdf", CERMINE]:
        shutil.copy(PAPERS / name, tmp_path / name)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"documents": [{"file": CERMINE, "title": "Focus groups", "year": 2010}]})
    )
    assert corpus_digest(tmp_path) == load_corpus(tmp_path).hash
    shutil.copy(tmp_path / CERMINE, tmp_path / "sub.txt")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"documents": [{"file": "sub.txt", "id": "jitc2018-bth1677-nsclc-rct"}]})
    )
    for call in (load_corpus, corpus_digest):
        try:
            call(tmp_path)
        except CorpusError as exc:
            assert "duplicate document ids" in exc.message
        else:
            raise AssertionError(f"{call.__name__} took two documents with one id")


def test_the_corpus_hash_reads_documents_in_order_of_id_whatever_order_their_files_come_in(
    tmp_path: Path,
) -> None:
    """The corpus hash is kept as bytes in scratch files (not a dict a document) and hashed in order of id:
    the sha256 of each document's metadata as JSON and its text's sha256, sorted by id, then the packaged
    vocabulary. Ids in file order are hashed as read; a manifest whose ids run against the files' order
    gives the same hash as sorting them, in every reader of it, on a shelf or not."""
    import hashlib
    import shutil

    from qa.corpus import corpus_digest, corpus_hash
    from qa.facts.vocab import packaged_vocabulary_bytes
    from qa.shelf import DocumentShelf

    require_papers()
    names = ["jitc2018-bth1677-nsclc-rct.xml", "bmchsr2014-quality-improvement-malawi.pdf", CERMINE]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in names:
        shutil.copy(PAPERS / name, corpus / name)
    files = sorted(names)
    in_order, against = [f"a{i}" for i in range(3)], [f"z{3 - i}" for i in range(3)]
    for ids in (in_order, against):
        manifest = {"documents": [{"file": f, "id": i} for f, i in zip(files, ids, strict=True)]}
        (corpus / "manifest.json").write_text(json.dumps(manifest))
        loaded = load_corpus(corpus)
        expected = hashlib.sha256()
        for doc in sorted(loaded.documents, key=lambda d: d.id):
            expected.update(json.dumps(doc.meta.to_dict(), sort_keys=True).encode() + doc.sha256.encode())
        expected.update(packaged_vocabulary_bytes())
        shelf = DocumentShelf(tmp_path)
        shelved = load_corpus(corpus, shelf=shelf)
        assert [d.id for d in loaded.documents] == ids and [d.id for d in shelved.documents] == ids
        assert loaded.hash == shelved.hash == corpus_digest(corpus) == expected.hexdigest()
        assert corpus_hash(corpus, reversed(loaded.documents)) == loaded.hash
        shelf.close()
        assert [p.name for p in tmp_path.iterdir()] == ["corpus"]  # no scratch file left behind
