"""The section tree of both seed documents matches what a human reader sees."""

from __future__ import annotations

from conftest import CORPUS, DOC_000, DOC_003

from qa.corpus import load_corpus
from qa.documents import Document, Section, reference_numbers
from qa.structure import analyze


def _tree(sections: list[Section]) -> list[object]:
    return [(s.title, _tree(s.children)) if s.children else s.title for s in sections]


def _doc(doc_id: str) -> Document:
    doc = load_corpus(CORPUS).get(doc_id)
    assert doc is not None
    return doc


def test_numbered_sections_of_000() -> None:
    doc = _doc(DOC_000)
    assert _tree(doc.sections) == [
        "Abstract",
        "1 Introduction",
        (
            "2 Immunotherapeutic Strategies Targeting the TME",
            [
                (
                    "2.1 Therapeutic Strategies Based on TME Inhibitory Signaling",
                    [
                        "2.1.1 Targeting TME Physical Barriers",
                        "2.1.2 Targeting Immune Checkpoints",
                        "2.1.3 Targeting Immunosuppressive Cells",
                        "2.1.4 Targeting Inhibitory Cytokines",
                        "2.1.5 Targeting Metabolic Inhibition Signaling",
                    ],
                ),
                (
                    "2.2 Therapeutic Strategies Based on TME Stimulatory Signals",
                    [
                        "2.2.1 Targeting Stimulatory Checkpoints",
                        "2.2.2 Application of Stimulating Cytokines",
                        "2.2.3 Enhancing Antigen Presentation",
                        "2.2.4 Application of Immune Effector Cells",
                    ],
                ),
            ],
        ),
        (
            "3 Challenges Faced by TIME Research and Solutions",
            [
                "3.1 Complexity of TIME",
                "3.2 Spatiotemporal Heterogeneity of TIME",
                "3.3 Systemic Immunity Affects TME Immune Response",
            ],
        ),
        "4 Summary and Prospect",
        "Table 1",
    ]
    assert doc.sections[0].kind == "abstract" and doc.sections[-1].kind == "table"
    numbers = [s.number for s in doc.section_index().values() if s.kind == "section"]
    assert "2.1.1" in numbers and "3.3" in numbers


def test_unnumbered_nesting_of_003() -> None:
    doc = _doc(DOC_003)
    mechanisms = [
        "Immune checkpoint",
        "TAMs",
        "MDSCs",
        "CAFs",
        "NK cells",
        "Immune-related cytokines",
        "Tregs",
    ]
    targeting = [
        "Targeting immune checkpoint",
        "Targeting TAMs",
        "Targeting MDSCs",
        "Targeting CAFs",
        "Targeting NK cells",
        "Targeting immune-related cytokines",
        "Targeting Tregs",
    ]
    assert _tree(doc.sections) == [
        "Abstract",
        "Introduction",
        (
            "Mechanisms of immune resistance",
            [
                ("Aspects of tumor cell", ["APCs", "Tumor cell-associated pathways"]),
                ("Microenvironment", mechanisms),
            ],
        ),
        (
            "Treatment",
            [
                (
                    "Tumor cell aspects",
                    ["Targeting APCs", "Targeting tumor cell-associated signaling pathway"],
                ),
                ("Microenvironment", targeting),
            ],
        ),
        "Conclusion and perspective",
    ]
    assert doc.section_path("apcs") == ["Mechanisms of immune resistance", "Aspects of tumor cell", "APCs"]


def test_captions_and_table_text_are_typed() -> None:
    doc = _doc(DOC_000)
    captions = [doc.text[b.start : b.end].replace("\xa0", " ") for b in doc.blocks if b.kind == "caption"]
    assert any(c.startswith("Figure 1 | Immunotherapeutic Strategies") for c in captions)
    assert any(c.startswith("Table 1 | An overview") for c in captions)
    table = "\n".join(doc.text[b.start : b.end] for b in doc.blocks if b.kind == "table")
    assert "NCT08099109" in table and "LEAP-006 study (NCT03829319)" in table
    body = "\n".join(doc.text[b.start : b.end] for b in doc.blocks if b.kind == "body")
    assert "NCT08099109" not in body  # the OCR'd table stays out of body text
    figures_003 = [_doc(DOC_003).text[b.start : b.end] for b in _doc(DOC_003).blocks if b.kind == "caption"]
    assert len(figures_003) == 4


def test_markdown_headings_give_levels() -> None:
    text = "# Title\n\nIntro text here.\n\n## Methods\n\nWe did things.\n\n### Cohort\n\nPeople.\n\n| a | b |\n| 1 | 2 |\n"
    blocks, sections = analyze(text, markdown=True)
    assert _tree(sections) == [("Title", [("Methods", ["Cohort"])])]
    assert [b.kind for b in blocks][-1] == "table"


def test_reference_markers() -> None:
    assert reference_numbers("shown (2–5) and (82), also (2, 6, 7); not (22/37) or (18.9%)") == [
        2,
        3,
        4,
        5,
        82,
        6,
        7,
    ]
    assert reference_numbers("(65–67)") == [65, 66, 67]
