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


# Each PDF's metadata as its first page prints it (BMC's DOI only in the "Cite this article" box at the end;
# its embedded XMP names another article): title start, authors, journal, year, DOI.
FIRST_PAGE = {
    BMC: (
        "Understanding the barriers to setting up a healthcare quality improvement process",
        [
            "Josephine Nana Afrakoma Agyeman-Duah",
            "Antje Theurer",
            "Charles Munthali",
            "Noor Alide",
            "Florian Neuhann",
        ],
        "BMC Health Services Research",
        2014,
        "10.1186/1472-6963-14-1",
    ),
    HINDAWI: (
        "Patient Experiences of Structured Heart Failure Programmes",
        ["Nuala E. Tully", "Karen M. Morgan", "Helen M. Burke", "Hannah M. McGee"],
        "Rehabilitation Research and Practice",
        2010,
        "10.1155/2010/157939",
    ),
    NCOMMS: (
        "Metabolic glycan labeling immobilizes dendritic cell membrane",
        ["Joonsu Han", "Rimsha Bhatta", "Yusheng Liu", "Yang Bo", "Alberto Elosegui-Artola", "Hua Wang"],
        "Nature Communications",
        2023,
        "10.1038/s41467-023-40886-7",
    ),
}


@pytest.fixture(scope="module")
def pdfs(papers: Path) -> dict[str, Document]:
    return {name: load_document(papers / name, papers, None, 20_000_000) for name in FIRST_PAGE}


@pytest.mark.parametrize("name", sorted(FIRST_PAGE))
def test_metadata_is_what_the_first_page_prints(pdfs: dict[str, Document], name: str) -> None:
    title, authors, journal, year, doi = FIRST_PAGE[name]
    m = pdfs[name].meta
    assert m.title and m.title.startswith(title)
    assert (m.authors, m.journal, m.year, m.doi) == (authors, journal, year, doi)
    assert m.url == f"https://doi.org/{doi}"


def test_ncomms_byline_beside_the_dates_sidebar_is_read_whole(pdfs: dict[str, Document]) -> None:
    # the byline's first name is split from its affiliation marks, and the "Received:" sidebar sits beside it
    authors = pdfs[NCOMMS].meta.authors
    assert authors[0] == "Joonsu Han" and authors[-1] == "Hua Wang" and len(authors) == 6


def test_bmc_small_references_heading_keeps_the_list_out_of_passages(pdfs: dict[str, Document]) -> None:
    doc = pdfs[BMC]
    refs = [s for s in doc.sections if s.kind == "references"]
    assert [s.title for s in refs] == ["References"]
    titles = [s.title for s in doc.sections]
    assert {"Competing interests", "Authors’ contributions", "Acknowledgments", "Author details"} <= set(
        titles
    )
    passages = chunk_document(doc, word_count, max_tokens=200, overlap=1)
    for ref in doc.references:
        probe = ref.text[:40]
        assert not any(probe in p.text for p in passages), probe
    assert not any("Int J Health Care Qual Assur" in p.text for p in passages)


@pytest.mark.parametrize(("name", "count"), [(BMC, 31), (HINDAWI, 17), (NCOMMS, 52)])
def test_reference_list_split_into_its_numbered_entries(
    pdfs: dict[str, Document], name: str, count: int
) -> None:
    doc = pdfs[name]
    numbered = [r for r in doc.references if r.number is not None]
    assert [r.number for r in numbered] == list(range(1, count + 1))
    for ref in numbered:
        assert ref.start is not None and ref.end is not None
        entry = doc.text[ref.start : ref.end]
        assert entry.startswith(f"{ref.number}. ") and entry.endswith(ref.text)
        # no entry swallows the next one's label
        assert f" {ref.number + 1}. " not in ref.text and f"[{ref.number + 1}]" not in ref.text
        assert doc.page_at(ref.start) is not None
    by_number = {r.number: r.text for r in numbered}
    if (
        name == BMC
    ):  # label "10." printed 1.5 pt below its text line; the list ends before "Cite this article"
        assert by_number[10].startswith("Palmer D: Tackling Malawi’s human resources crisis.")
        assert "Cite this article" not in by_number[31]
    if name == NCOMMS:  # labels set apart from the text ("1." ... "Mellman, I.")
        assert by_number[1] == "Mellman, I., Coukos, G. & Dranoff, G. Cancer immunotherapy comes of age. " + (
            "Nature 480, 480–489 (2011)."
        )
    if name == HINDAWI:  # hyphenated across lines, the tail word "ment" is no word of the paper
        assert "Practical Assessment, Research & Evaluation" in by_number[9]


def test_hindawi_unheaded_abstract_is_an_abstract_section(pdfs: dict[str, Document], papers: Path) -> None:
    doc = pdfs[HINDAWI]
    abstract = next(s for s in doc.sections if s.kind == "abstract")
    following = doc.sections[doc.sections.index(abstract) + 1]
    assert following.title == "1. Introduction"
    body = doc.text[abstract.end - 200 : abstract.end]
    assert body.endswith("sustain patients’ confidence in disease self-management.")
    # the same abstract as CERMINE's reference text of this PDF (which uses ASCII apostrophes)
    cermine = (papers / HINDAWI.replace(".pdf", ".cermine-fulltext.txt")).read_text()
    expected = " ".join(cermine.split("Objectives. ", 1)[1].split("\n1. Introduction", 1)[0].split())
    got = " ".join(doc.text[abstract.start : abstract.end].split()).replace("’", "'")
    # a structured abstract: each labelled part is a section of its own, its label the section's title
    labels = ["Objectives", "Methods", "Results", "Conclusion"]
    assert [c.title for c in abstract.children] == labels
    for label in labels[1:]:
        expected = expected.replace(f" {label}. ", f" {label} ", 1)
    assert got == "Abstract Objectives " + expected
    methods = abstract.children[1]
    assert doc.text[methods.start : methods.end].split("\n\n")[1].startswith("Focus groups were conducted")


def test_structured_abstract_parts_and_a_whole_nature_abstract(pdfs: dict[str, Document]) -> None:
    """BMC's "Background: ... Methods: ..." paragraphs become the abstract's sections; Nature's abstract, set
    in larger type with looser leading than the body, stays one paragraph under its heading."""
    bmc = pdfs["bmchsr2014-quality-improvement-malawi.pdf"]
    abstract = next(s for s in bmc.sections if s.kind == "abstract")
    assert [c.title for c in abstract.children][:4] == ["Background", "Methods", "Results", "Conclusions"]
    results = abstract.children[2]
    assert "Human resource shortages, staff attitudes" in bmc.text[results.start : results.end]
    nature = pdfs[NCOMMS]
    abstract = next(s for s in nature.sections if s.kind == "abstract")
    text = nature.text[abstract.start : abstract.end]
    assert text.startswith(
        "Abstract\n\nDendritic cell (DC) vaccine was among the first FDA-approved cancer immunotherapies"
    )
    assert text.rstrip().endswith("minimal interference upon the clinical manufacturing process.")


def test_ncomms_unheaded_introduction_is_not_the_abstract(pdfs: dict[str, Document]) -> None:
    doc = pdfs[NCOMMS]
    titles = [s.title for s in doc.sections]
    assert titles[:4] == ["Front matter", "Abstract", "Introduction", "Results"]
    abstract = doc.sections[1]
    assert (
        doc.text[abstract.start : abstract.end]
        .rstrip()
        .endswith("minimal interference upon the clinical manufacturing process.")
    )
    assert "Sipuleucel-T" in doc.text[doc.sections[2].start : doc.sections[2].end]
    # run-in lead words of the back matter are not headings
    assert not any(t.startswith("Supplementary information The online") for t in _all_titles(doc))


def _all_titles(doc: Document) -> list[str]:
    return [s.title for s in doc.section_index().values()]


@pytest.mark.parametrize("name", sorted(FIRST_PAGE))
def test_every_passage_carries_its_page(pdfs: dict[str, Document], name: str) -> None:
    doc = pdfs[name]
    passages = chunk_document(doc, word_count, max_tokens=200, overlap=1)
    assert passages and all(p.page and 1 <= p.page <= len(doc.pages) for p in passages)
    refs = next(s for s in doc.sections if s.kind == "references")
    assert all(p.end <= refs.start or p.start >= refs.end for p in passages)


def test_bare_reference_label_keeps_the_numbering_going(tmp_path: Path) -> None:
    # reference 32 of this paper has no text: its twin prints a bare "32." line, which must not end the list
    pytest.importorskip("reportlab")
    sys.path.insert(0, str(ROOT / "bench"))
    import pdf_twins

    row = pdf_twins.compare(PAPERS / "jtm2007-imiquimod-tlr7-actinic-keratosis.xml", tmp_path)
    assert row["references"] == [102, 102], row["references"]
    back = PdfReader().read(tmp_path / "jtm2007-imiquimod-tlr7-actinic-keratosis.pdf")
    assert [r.number for r in back.references] == list(range(1, 103))
    assert back.references[32].text.startswith("Zeeberg BR")


def test_back_matter_is_labelled_and_a_run_in_statement_is_no_heading(pdfs: dict[str, Document]) -> None:
    """Nature Communications sets "Peer review information Nature Communications thanks ..." with its label in
    bold on the statement's own line: a paragraph of the back matter, not a section heading."""
    doc = pdfs[NCOMMS]
    sections = doc.section_index().values()
    assert not any(s.title.startswith("Peer review information") for s in sections)
    back = {s.title for s in sections if s.kind == "back"}
    assert {"Data availability", "Acknowledgements", "Author contributions", "Competing interests"} <= back
    assert "Additional information" in back
    holder = next(s for s in sections if s.title == "Additional information")
    peer = doc.text.index("Peer review information Nature Communications thanks")
    assert holder.start <= peer < holder.end
    content = {"Abstract", "Introduction", "Results", "Discussion", "Methods"}
    assert not any(s.kind == "back" for s in sections if s.title in content)
    bmc = pdfs["bmchsr2014-quality-improvement-malawi.pdf"]
    assert {"Competing interests", "Authors’ contributions"} <= {
        s.title for s in bmc.section_index().values() if s.kind == "back"
    }
