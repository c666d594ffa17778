"""The PDF reader on the real two-column papers, and on a rendered twin of an XML paper."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from paperset import PAPERS, ROOT, require_papers, word_count

from qa.chunking import chunk_document
from qa.corpus import load_document
from qa.documents import Document
from qa.readers import reader_for
from qa.readers.pdf import PdfReader

NCOMMS = "ncomms2023-glycan-labeled-dc-vaccine.pdf"
BMC = "bmchsr2014-quality-improvement-malawi.pdf"
HINDAWI = "hindawi2010-heart-failure-rehab-focus-groups.pdf"


@pytest.fixture(scope="module")
def papers() -> Path:
    return require_papers()


@pytest.fixture(scope="module")
def ncomms(papers: Path) -> Document:
    return load_document(papers / NCOMMS, papers, None, 20_000_000)


def test_registered_for_pdf() -> None:
    assert isinstance(reader_for(Path("paper.PDF")), PdfReader)


def test_metadata_from_the_first_page(ncomms: Document, papers: Path) -> None:
    m = ncomms.meta
    assert m.title == (
        "Metabolic glycan labeling immobilizes dendritic cell membrane and enhances antitumor efficacy of "
        "dendritic cell vaccine"
    )
    assert (m.doi, m.year, m.licence) == ("10.1038/s41467-023-40886-7", 2023, "CC BY 4.0")
    hindawi = load_document(papers / HINDAWI, papers, None, 20_000_000).meta
    assert hindawi.title == "Patient Experiences of Structured Heart Failure Programmes"
    assert (hindawi.doi, hindawi.year) == ("10.1155/2010/157939", 2010)


def test_metadata_of_another_article_is_not_believed(papers: Path) -> None:
    m = load_document(papers / BMC, papers, None, 20_000_000).meta
    assert m.title and m.title.startswith("Understanding the barriers to setting up a healthcare quality")
    assert m.doi != "10.1186/2046-1682-4-13" and "macromolecular" not in (m.title or "")
    assert m.authors[:2] == ["Josephine Nana Afrakoma Agyeman-Duah", "Antje Theurer"]
    assert (m.year, m.licence) == (2014, "CC BY 2.0")


def test_ligatures_hyphenation_and_running_heads(ncomms: Document) -> None:
    text = ncomms.text
    assert "ﬁ" not in text and "ﬂ" not in text and "efficacy" in text
    assert "immunotherapies" in text and "immu- notherapies" not in text
    # the running footer of every page is gone (the first page keeps its own line with the DOI)
    assert text.count("NATURE COMMUNICATIONS |") <= 1
    for block in ncomms.blocks:
        assert block.kind != "body" or not text[block.start : block.end].strip().isdigit()


def test_sections_captions_references_and_pages(ncomms: Document) -> None:
    titles = [s.title for s in ncomms.sections]
    assert {"Results", "Discussion", "Methods", "References"} <= set(titles)
    assert any(
        ncomms.text[b.start : b.end].startswith("Fig. 1") for b in ncomms.blocks if b.kind == "caption"
    )
    refs = next(s for s in ncomms.sections if s.kind == "references")
    assert len(ncomms.pages) == 14 and ncomms.pages[0] == 0
    assert ncomms.page_at(len(ncomms.text) - 1) == 14
    passages = chunk_document(ncomms, word_count, max_tokens=200, overlap=1)
    assert all(p.text == ncomms.text[p.start : p.end] for p in passages)
    assert all(p.end <= refs.start or p.start >= refs.end for p in passages)  # references never retrieved
    assert all(p.page and 1 <= p.page <= 14 for p in passages)
    assert {p.page for p in passages} >= set(range(1, 8))  # page 8 is nearly all figure
    assert "Sipuleucel-T" in ncomms.text


def test_rendered_twin_of_an_xml_paper_agrees_with_it(tmp_path: Path) -> None:
    pytest.importorskip("reportlab")
    sys.path.insert(0, str(ROOT / "bench"))
    import pdf_twins  # type: ignore[import-not-found]

    row = pdf_twins.compare(PAPERS / "cii2015-killer-t-dc-lung-phase3.xml", tmp_path)
    assert row["agreement"] >= 0.97 and row["same_section_titles"], row
    assert row["title_read_back"] and row["authors_read_back"]
    back = PdfReader().read(tmp_path / "cii2015-killer-t-dc-lung-phase3.pdf")
    assert len(back.pages) == row["pages"] and "Page 2 of" not in back.text
