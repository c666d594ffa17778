"""Hostile and broken input: XML bombs and external entities, deep nesting, PDFs without text, encrypted
or corrupt. Each is refused with a CorpusError naming the file, and the rest of the corpus still loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from paperset import PAPERS

from qa.corpus import load_corpus
from qa.errors import CorpusError
from qa.readers.jats import JatsReader
from qa.readers.pdf import PdfReader
from qa.shelf import DocumentShelf

SECRET = "TOP-SECRET-7f3a9c"

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE article [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<article><body><sec><title>Laughs</title><p>&lol9;</p></sec></body></article>
"""


def external_entity(target: Path) -> str:
    return f"""<?xml version="1.0"?>
<!DOCTYPE article [ <!ENTITY xxe SYSTEM "file://{target}"> ]>
<article><body><sec><title>Leak</title><p>&xxe;</p></sec></body></article>
"""


def undeclared_entity(target: Path) -> str:  # a DTD loaded from disk would declare it
    return f"""<?xml version="1.0"?>
<!DOCTYPE article SYSTEM "file://{target}">
<article><body><sec><title>Leak</title><p>&secret;</p></sec></body></article>
"""


def _secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET, encoding="utf-8")
    (tmp_path / "outside" / "secret.dtd").write_text(f'<!ENTITY secret "{SECRET}">', encoding="utf-8")
    return secret


def test_billion_laughs_is_refused_naming_the_file(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(BILLION_LAUGHS, encoding="utf-8")
    with pytest.raises(CorpusError) as err:
        JatsReader().read(bomb)
    assert str(bomb) in err.value.message and "entit" in err.value.message


def test_external_entities_and_dtds_are_never_read(tmp_path: Path) -> None:
    secret = _secret_file(tmp_path)
    for name, body in [
        ("xxe.xml", external_entity(secret)),
        ("dtd.xml", undeclared_entity(secret.with_suffix(".dtd"))),
    ]:
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        with pytest.raises(CorpusError) as err:
            JatsReader().read(path)
        assert str(path) in err.value.message and SECRET not in err.value.message


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / "deep.xml"
    deep.write_text("<article><body>" + "<sec>" * 300 + "x" + "</sec>" * 300 + "</body></article>")
    with pytest.raises(CorpusError, match="deep"):
        JatsReader().read(deep)


def _pdf(path: Path, *, text: str | None, encrypt: str | None = None) -> Path:
    from reportlab.pdfgen.canvas import Canvas

    c = Canvas(str(path), encrypt=encrypt)
    if text:
        c.setFont("Helvetica", 11)
        c.drawString(72, 720, text)
    else:
        c.rect(72, 400, 300, 300, fill=1)  # a "scanned" page: drawing, no text
    c.showPage()
    c.save()
    return path


def test_pdf_without_text_encrypted_or_corrupt_gets_a_clear_error(tmp_path: Path) -> None:
    cases = {
        "scan.pdf": (lambda p: _pdf(p, text=None), "no text layer; OCR it first"),
        "locked.pdf": (lambda p: _pdf(p, text="Hidden words", encrypt="pw"), "encrypted"),
        "corrupt.pdf": (lambda p: p.write_bytes(b"%PDF-1.4\n1 0 obj <<\n"), "corrupt"),
        "notpdf.pdf": (lambda p: p.write_bytes(b"GIF89a not a pdf"), "not a PDF"),
    }
    for name, (make, message) in cases.items():
        path = tmp_path / name
        make(path)
        with pytest.raises(CorpusError) as err:
            PdfReader().read(path)
        assert str(path) in err.value.message and message in err.value.message, err.value.message


def test_the_rest_of_the_corpus_still_loads(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    secret = _secret_file(tmp_path)
    (corpus / "bomb.xml").write_text(BILLION_LAUGHS, encoding="utf-8")
    (corpus / "xxe.nxml").write_text(external_entity(secret), encoding="utf-8")
    _pdf(corpus / "scan.pdf", text=None)
    (corpus / "corrupt.pdf").write_bytes(b"%PDF-1.4\ngarbage")
    shutil.copy(PAPERS / "jitc2013-cea-peptide-vaccine-pancreatic.xml", corpus)
    loaded = load_corpus(corpus)
    assert [d.id for d in loaded.documents] == ["jitc2013-cea-peptide-vaccine-pancreatic"]
    skipped = " ".join(loaded.skipped)
    for name in ("bomb.xml", "xxe.nxml", "scan.pdf", "corrupt.pdf"):
        assert str(corpus / name) in skipped
    assert SECRET not in skipped and all(SECRET not in d.text for d in loaded.documents)


def test_two_files_with_one_id_are_refused_naming_the_id(tmp_path: Path) -> None:
    """Ids come from file stems (or manifest.json): a.txt and a.md would be one document twice."""
    for name in ("a.txt", "a.md", "b.txt"):
        (tmp_path / name).write_text("A heading\n\nSome text about PD-1 blockade.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"duplicate document ids \['a'\]"):
        load_corpus(tmp_path)
    (tmp_path / "shelf").mkdir()
    shelf = DocumentShelf(tmp_path / "shelf")  # a build's: the ids' repeats kept as they are read
    with pytest.raises(CorpusError, match=r"duplicate document ids \['a'\]"):
        load_corpus(tmp_path, shelf=shelf)
    shelf.close()
