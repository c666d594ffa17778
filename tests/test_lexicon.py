"""The lexicon's learned abbreviations and lay terms, and figure/table/section references."""

from pathlib import Path

from qa.chunking import Passage
from qa.lexicon import Lexicon, learn_abbreviations
from qa.references import ALL_ROWS, ReferenceMap, StoredReferences


def test_abbreviations_are_learned_from_definitions() -> None:
    text = "Myeloid-derived suppressor cells (MDSCs) and high-density lipoprotein (HDL). MDSC, myeloid cell; DC, dendritic cell."
    found = learn_abbreviations([text])
    assert found["MDSC"] == ["Myeloid-derived suppressor cells"]
    assert found["HDL"] == ["high-density lipoprotein"]
    assert found["DC"] == ["dendritic cell"]


def test_an_abbreviation_first_in_a_longer_bracket_is_learned() -> None:
    # the BTH1677 trial report's only definition of ORR; a bracket that merely starts with a word is not one
    text = (
        "Efficacy endpoints were objective response rate (ORR; primary endpoint), disease control rate, and "
        "overall survival (OS, months). Patients were enrolled (Table 1; all stage IV)."
    )
    found = learn_abbreviations([text])
    assert found["ORR"] == ["objective response rate"]
    assert found["OS"] == ["overall survival"]
    assert "Table" not in found


def test_lay_terms_and_both_directions() -> None:
    lex = Lexicon.learn(["high-density lipoprotein (HDL) particles"])
    assert "cytotoxic T lymphocytes" in lex.expand("Which cells hold back killer T cells?")
    assert "HDL" in lex.expand("carriers that imitate good cholesterol")
    assert "HDL" in lex.expand("high-density lipoproteins in tumours")
    assert "high-density lipoprotein" in lex.expand("What does HDL carry?")
    assert "high-density lipoprotein" not in lex.expand("What does HDL carry?", abbreviations=False)


def test_lay_phrases_match_inflected_wording_and_keep_the_question_words() -> None:
    lex = Lexicon.learn([])
    found = dict(lex.lay_phrases("How was cancer kept from coming back?"))
    assert "recurrence" in found["coming back"]  # the entry says "come back"
    assert lex.expand("Is the cancer coming back?") == lex.expand("Did the cancer come back?")
    assert lex.lay_phrases("What is PD-1?") == []


def test_references_name_captions_and_sections() -> None:
    def p(i: int, kind: str, section: list[str], text: str) -> Passage:
        return Passage(f"d:{i}", "d", "s", section, kind, i, i + 1, text)

    passages = [
        p(0, "body", ["3 Results", "3.1 Complexity"], "Body text."),
        p(1, "caption", ["3 Results"], "Figure 1 | Strategies. (A) one"),
        p(2, "caption", ["3 Results"], "SLCs, solute carriers; DC, dendritic cell."),
        p(3, "table", ["Table 2"], "row"),
    ]
    refs = ReferenceMap.from_passages(passages)
    assert refs.find("What do panels A and B of Figure 1 show?") == [1, 2]
    assert refs.find("What is in table 2?") == [3]
    assert refs.find("What does section 3.1 say?") == [0]
    assert refs.find("What is PD-1?") == []


def test_a_reference_every_paper_answers_to_brings_in_only_the_candidates_it_names(tmp_path: Path) -> None:
    """In a library a "Figure 1" caption is in every paper: past ALL_ROWS passages a label gives only its rows
    among the candidates (or the named papers' passages), in memory and on disk alike."""

    def p(d: int, i: int, kind: str, section: list[str], text: str) -> Passage:
        return Passage(f"d{d}:{i}", f"d{d}", "s", section, kind, i, i + 1, text)

    library = [
        q
        for d in range(ALL_ROWS + 6)  # papers
        for q in (
            p(d, 0, "body", ["2 Methods"], "Body text."),
            p(d, 1, "caption", ["2 Methods"], "Figure 1 | Design."),
            *([p(d, 2, "table", ["Table 3"], "row")] if d < 3 else []),  # in three papers only
        )
    ]
    StoredReferences.write(library, tmp_path / "refs.sqlite3")
    stored, held = StoredReferences(tmp_path / "refs.sqlite3"), ReferenceMap.from_passages(library)
    assert stored.rows == held.rows and len(held.rows[("figure", "1")]) == ALL_ROWS + 6
    tables = held.rows[("table", "3")]
    candidates = [0, 1, 7, 8, 9, len(library) - 1]
    for refs in (stored, held):
        assert refs.find("What is in Table 3?") == tables  # a few: all of them, candidates or not
        assert refs.find("What does Figure 1 show?") == []  # one in every paper, and no candidates
        assert refs.find("What does Figure 1 show?", candidates) == [1, 7, len(library) - 1]
        in_methods = [0, 1, 7, 9, len(library) - 1]  # row 8 is a table, in its own section
        both = refs.find("Figure 1 and table 3 and section 2", candidates)
        assert both == [1, 7, len(library) - 1, *tables, *in_methods]
