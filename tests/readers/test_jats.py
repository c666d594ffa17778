"""The JATS/NLM reader on the six real PMC / Europe PMC articles: metadata, sections, citations, tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from paperset import PAPERS, require_papers, word_count

from qa.chunking import chunk_document
from qa.corpus import load_document
from qa.documents import reference_numbers
from qa.readers import ParsedText, reader_for
from qa.readers.jats import JatsReader, _Inline, _Refs, parse_xml, table_rows

# file -> (doi, pmcid, year, licence, first author, authors, title starts)
EXPECTED = {
    "jitc2018-bth1677-nsclc-rct.xml": (
        "10.1186/s40425-018-0324-z",
        "PMC5830087",
        2018,
        "CC BY 4.0",
        "Walburga Engel-Riedel",
        11,
        "A randomized, controlled trial evaluating the efficacy and safety of BTH1677",
    ),
    "cii2015-killer-t-dc-lung-phase3.xml": (
        "10.1007/s00262-014-1613-0",
        "PMC4282697",
        2015,
        "CC BY",
        "Hideki Kimura",
        6,
        "Randomized controlled phase III trial of adjuvant chemo-immunotherapy",
    ),
    "jitc2013-cea-peptide-vaccine-pancreatic.xml": (
        "10.1186/2051-1426-1-8",
        "PMC4019890",
        2013,
        "CC BY 2.0",
        "Daniel M Geynisman",
        11,
        "A randomized pilot phase I study of modified carcinoembryonic antigen",
    ),
    "jtm2007-imiquimod-tlr7-actinic-keratosis.xml": (
        "10.1186/1479-5876-5-7",
        "PMC1796543",
        2007,
        "CC BY 2.0",
        "Abel Torres",
        10,
        "Immune-mediated changes in actinic keratosis",
    ),
    "sttt2025-immune-evasion-review.xml": (
        "10.1038/s41392-025-02280-1",
        "PMC12311175",
        2025,
        "CC BY 4.0",
        "Muhammad Tufail",
        3,
        "Immune evasion in cancer: mechanisms and cutting-edge therapeutic approaches",
    ),
    "eho2025-collagen-immunotherapy-review.xml": (
        "10.1186/s40164-025-00691-y",
        "PMC12306033",
        2025,
        "CC BY 4.0",
        "Yida Wang",
        10,
        "Targeting collagen to optimize cancer immunotherapy",
    ),
}


@pytest.fixture(scope="module")
def papers() -> Path:
    return require_papers()


def read(name: str) -> ParsedText:
    return JatsReader().read(PAPERS / name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_front_matter_becomes_the_documents_metadata(papers: Path, name: str) -> None:
    doi, pmcid, year, licence, first, n_authors, title = EXPECTED[name]
    doc = load_document(papers / name, papers, None, 20_000_000)
    m = doc.meta
    assert (m.doi, m.pmcid, m.year, m.licence) == (doi, pmcid, year, licence)
    assert m.authors[0] == first and len(m.authors) == n_authors
    assert m.title and m.title.startswith(title)
    assert m.url == f"https://doi.org/{doi}"
    assert m.journal


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_offsets_index_the_text_and_references_are_never_passages(papers: Path, name: str) -> None:
    doc = load_document(papers / name, papers, None, 20_000_000)
    for block in doc.blocks:
        assert doc.text[block.start : block.end].strip()
    refs = next(s for s in doc.sections if s.kind == "references")
    assert doc.references and all(r.start is not None and r.start >= refs.start for r in doc.references)
    passages = chunk_document(doc, word_count, max_tokens=200, overlap=1)
    assert passages and all(p.text == doc.text[p.start : p.end] for p in passages)
    assert all(p.end <= refs.start or p.start >= refs.end for p in passages)
    assert all(p.page is None for p in passages)  # XML has no pages


def test_registered_for_xml_and_nxml() -> None:
    assert isinstance(reader_for(Path("a.xml")), JatsReader)
    assert isinstance(reader_for(Path("a.NXML")), JatsReader)


def test_section_tree_follows_sec_and_title(papers: Path) -> None:
    parsed = read("jitc2018-bth1677-nsclc-rct.xml")
    top = [s.title for s in parsed.sections]
    assert top[:4] == ["Abstract", "Background", "Methods", "Results"]
    assert parsed.sections[0].kind == "abstract"
    assert "Trial registration" in [c.title for c in parsed.sections[0].children]
    assert top[-1] == "References"


def test_citations_become_reference_markers_in_the_texts_own_numbering(papers: Path) -> None:
    parsed = read("jitc2018-bth1677-nsclc-rct.xml")
    assert "metastatic disease (1)." in parsed.text
    assert "short-lived benefit (2–4)." in parsed.text
    assert reference_numbers("a benefit (2–4).") == [2, 3, 4]
    review = read("sttt2025-immune-evasion-review.xml")
    assert "kill cancer cells (362, 363)." in review.text  # superscripts after the period, moved before it
    assert not re.search(r"\.\d{3},\d{3}", review.text)
    ref = next(r for r in review.references if r.number == 362)
    assert ref.text and "[" not in ref.text[:3]


def test_markup_traps_of_the_papers(papers: Path) -> None:
    cea = read("jitc2013-cea-peptide-vaccine-pancreatic.xml").text
    assert "spots per 10^4 CD8+ cells" in cea and "IFN-γ" in cea
    cii = read("cii2015-killer-t-dc-lung-phase3.xml").text
    assert "documentclass" not in cii and "usepackage" not in cii
    imiquimod = read("jtm2007-imiquimod-tlr7-actinic-keratosis.xml").text
    assert "abelt@aol.com" not in imiquimod and "urn:ISSN" not in imiquimod  # the RDF comment
    assert "[(14, 15), and unpublished internal data]" in imiquimod


def test_tables_are_caption_plus_rows_with_spanning_cells_carried_down(papers: Path) -> None:
    parsed = read("sttt2025-immune-evasion-review.xml")
    tables = [parsed.text[b.start : b.end] for b in parsed.blocks if b.kind == "table"]
    assert len(tables) == 7
    rows = [row for t in tables for row in t.splitlines() if "ABBV-181" in row and "NCT" in row]
    assert len({re.search(r"NCT\d{8}", r).group(0) for r in rows}) >= 2  # type: ignore[union-attr]
    captions = [parsed.text[b.start : b.end] for b in parsed.blocks if b.kind == "caption"]
    assert any(c.startswith("Table 4") for c in captions) and any(c.startswith("Fig. 1") for c in captions)
    collagen = read("eho2025-collagen-immunotherapy-review.xml").text
    assert len(set(re.findall(r"NCT\d{8}", collagen))) == 42


def test_table_rows_carry_spanning_cells_down_and_across_the_row_end() -> None:
    table = parse_xml(
        Path("t.xml"),
        b"<table><thead><tr><th>Drug</th><th>Trial</th><th>Phase</th></tr></thead><tbody>"
        b'<tr><td rowspan="3">ABBV-181</td><td>NCT00000001</td><td rowspan="2">II</td></tr>'
        b"<tr><td>NCT00000002</td></tr>"
        b'<tr><td colspan="2">NCT00000003 (pooled)</td></tr>'
        b'<tr><td rowspan="x">bad span</td><td/><td>III</td></tr>'
        b"</tbody></table>",
    )
    rows = table_rows(table, _Inline(_Refs(table)))
    assert rows == [
        "Drug | Trial | Phase",
        "ABBV-181 | NCT00000001 | II",
        "ABBV-181 | NCT00000002 | II",  # the Phase cell is carried past the row's last own cell
        "ABBV-181 | NCT00000003 (pooled)",
        "bad span | III",  # an unreadable rowspan counts as 1 and empty cells drop out of the line
    ]


def test_back_matter_sections_are_labelled_back(papers: Path) -> None:
    doc = read("jitc2013-cea-peptide-vaccine-pancreatic.xml")
    kinds = {s.title: s.kind for s in doc.sections}
    assert kinds["Competing interests"] == kinds["Acknowledgments"] == "back"
    assert kinds["Methods"] == kinds["Results"] == kinds["Discussion"] == "section"
