"""JATS / NLM XML reader (PubMed Central, Europe PMC): front-matter metadata, sections, figures, tables, references.

Untrusted XML is parsed without a DTD, entity expansion or network access; a file that declares entities
(billion laughs, external entities) is refused whole rather than parsed around.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lxml import etree

from qa.documents import Reference
from qa.errors import CorpusError
from qa.readers.base import ParsedText, is_back_matter
from qa.readers.builder import TextBuilder, clean

MAX_DEPTH = 200  # deeper nesting than any article needs; libxml2 itself stops at 256
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_CITE_SEP = re.compile(r"^[\s,;\u2013\u2014\u2212-]*$")
_DASH = re.compile(r"[\u2013\u2014\u2212-]")
_SENT_PUNCT = ".,;:"
# Inline elements whose content is not running text (alternatives are resolved in _math).
_SKIP_INLINE = {
    *("fig", "table-wrap", "supplementary-material", "tex-math", "fn", "object-id", "graphic"),
    *("list", "disp-quote", "boxed-text"),  # written as blocks of their own after the paragraph
}
_BLOCK_ELEMENTS = {"fig", "table-wrap", "list", "disp-quote", "boxed-text", "def-list"}


def _local(el: Any) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""  # comments and processing instructions
    return tag.rsplit("}", 1)[-1]


def parse_xml(path: Path, data: bytes) -> Any:
    """The root element of ``data``, parsed safely; CorpusError (naming the file) for anything hostile."""
    if _ENTITY_DECL.search(data):
        raise CorpusError(
            f"{path}: the XML declares entities (<!ENTITY>); refused as unsafe (no DTD is read)"
        )
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise CorpusError(f"{path}: not well-formed XML ({exc})") from exc
    for el in root.iter():
        if isinstance(el, etree._Entity):
            raise CorpusError(f"{path}: the XML uses an undeclared entity (&{el.name};); refused")
    depth = _max_depth(root)
    if depth > MAX_DEPTH:
        raise CorpusError(f"{path}: XML nested {depth} levels deep (limit {MAX_DEPTH}); refused")
    return root


def _max_depth(root: Any) -> int:
    deepest, depth = 0, 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


class _Refs:
    """Reference ids to numbers: the entry's numeric label, else its place in the list."""

    def __init__(self, root: Any) -> None:
        self.numbers: dict[str, int] = {}
        self.elements = root.findall(".//back//ref-list//ref") or root.findall(".//ref-list//ref")
        for i, ref in enumerate(self.elements, 1):
            label = clean("".join(ref.findtext("label") or "")).rstrip(".")
            number = int(label) if label.isdigit() else i
            if ref.get("id"):
                self.numbers[ref.get("id")] = number


class _Inline:
    """Running text of an element: citations as "(1, 2–4)", superscript powers as "^", no markup."""

    def __init__(self, refs: _Refs) -> None:
        self.refs = refs

    def text(self, el: Any) -> str:
        out: list[str] = []
        self._content(el, out)
        return clean("".join(out))

    def _number(self, el: Any) -> int | None:
        if _local(el) != "xref" or el.get("ref-type") != "bibr":
            return None
        rid = (el.get("rid") or "").split()
        if rid and rid[0] in self.refs.numbers:
            return self.refs.numbers[rid[0]]
        label = clean("".join(el.itertext()))
        return int(label) if label.isdigit() else None

    def _content(self, el: Any, out: list[str]) -> None:
        if el.text:
            out.append(el.text)
        children = list(el)
        i = 0
        while i < len(children):
            child = children[i]
            if self._number(child) is not None:
                i = self._citation(children, i, out)
                continue
            self._element(child, out)
            if child.tail:
                out.append(child.tail)
            i += 1

    def _citation(self, children: list[Any], i: int, out: list[str]) -> int:
        """Consume a run of bibliography xrefs (and the separators between them) from ``children[i]``."""
        numbers: list[int] = []
        seps: list[str] = []
        j = i
        while j < len(children) and (n := self._number(children[j])) is not None:
            numbers.append(n)
            tail = children[j].tail or ""
            nxt = j + 1 < len(children) and self._number(children[j + 1]) is not None
            if nxt and _CITE_SEP.match(tail):
                seps.append("–" if _DASH.search(tail) else ", ")
                j += 1
                continue
            break
        tail = children[j].tail or ""
        self._emit_citation(numbers, seps, out, closing=tail)
        rest = tail
        if self._opened and rest.lstrip().startswith(("]", ")")):
            rest = rest.lstrip()[1:]
        if rest:
            out.append(rest)
        return j + 1

    _opened = False

    def _emit_citation(self, numbers: list[int], seps: list[str], out: list[str], closing: str = "") -> None:
        marker = "(" + "".join(f"{n}{seps[k] if k < len(seps) else ''}" for k, n in enumerate(numbers)) + ")"
        before = "".join(out)
        out.clear()
        stripped = before.rstrip()
        self._opened = False
        if stripped.endswith(("[", "(")) and closing.lstrip().startswith(("]", ")")):
            stripped = stripped[:-1].rstrip()
            self._opened = True
        punct = ""
        if stripped and stripped[-1] in _SENT_PUNCT and before == stripped:  # "cells.1,2" -> "cells (1, 2)."
            stripped, punct = stripped[:-1], stripped[-1]
        space = "" if not stripped or stripped.endswith(("[", "(")) else " "
        out.append(f"{stripped}{space}{marker}{punct}")

    def _element(self, el: Any, out: list[str]) -> None:
        name = _local(el)
        if not name or name in _SKIP_INLINE:
            return
        if name == "break":
            out.append(" ")
        elif name in ("inline-formula", "disp-formula"):
            out.append(self._math(el))
        elif name == "sup" and self._only_citations(el):
            kids = [c for c in el if _local(c)]
            numbers = [self._number(c) for c in kids]
            seps = ["–" if _DASH.search(c.tail or "") else ", " for c in kids[:-1]]
            self._emit_citation([n for n in numbers if n is not None], seps, out)
        elif name == "sup":
            inner = _Inline(self.refs).text(el)
            prev = "".join(out)[-1:]
            out.append(f"^{inner}" if prev.isdigit() and re.fullmatch(r"[−\-–+]?\d+", inner) else inner)
        else:
            self._content(el, out)

    def _only_citations(self, el: Any) -> bool:
        kids = [c for c in el if _local(c)]
        if not kids or any(self._number(c) is None for c in kids):
            return False
        return _CITE_SEP.match(el.text or "") is not None and all(_CITE_SEP.match(c.tail or "") for c in kids)

    def _math(self, el: Any) -> str:
        """MathML's text where there is one (never a LaTeX preamble), else the TeX body."""
        label = el.findtext("label") or ""
        for node in el.iter():
            if _local(node) == "math":
                return f" {clean(''.join(node.itertext()))} {label} "
        tex = next((n for n in el.iter() if _local(n) == "tex-math"), None)
        if tex is not None:
            body = "".join(tex.itertext())
            m = re.search(r"\\begin\{document\}(.*)\\end\{document\}", body, re.S)
            return f" {clean(m.group(1) if m else body).strip('$ ')} {label} "
        return clean("".join(el.itertext()))


def _licence(root: Any) -> str | None:
    lic = root.find(".//article-meta//license")
    if lic is None:
        lic = root.find(".//license")
    if lic is None:
        return None
    urls = [v for k, v in lic.attrib.items() if k.endswith("href")]
    urls += [clean("".join(n.itertext())) for n in lic.iter() if _local(n) == "license_ref"]
    urls += re.findall(r"creativecommons\.org/\S+", " ".join(lic.itertext()))
    for url in urls:
        m = re.search(r"creativecommons\.org/licenses/([a-z-]+)/(\d\.\d)", url)
        if m:
            return f"CC {m.group(1).upper()} {m.group(2)}"
        if "publicdomain/zero" in url:
            return "CC0 1.0"
    words = " ".join(lic.itertext())
    if re.search(r"Creative Commons Attribution", words, re.I):
        return "CC BY"
    return clean(lic.get("license-type") or "") or None


def _year(meta: Any) -> int | None:
    dates = meta.findall("pub-date")
    rank = {"ppub": 0, "collection": 1, "epub-ppub": 1, "epub": 2}
    best: tuple[int, int] | None = None
    for d in dates:
        kind = d.get("pub-type") or d.get("date-type") or ""
        if d.get("publication-format") == "print":
            kind = "ppub"
        year = (d.findtext("year") or "").strip()
        if year.isdigit():
            key = (rank.get(kind, 3), int(year))
            best = key if best is None or key < best else best
    return best[1] if best else None


def metadata(root: Any, inline: _Inline) -> dict[str, Any]:
    meta = root.find(".//front/article-meta")
    journal = root.find(".//front/journal-meta")
    out: dict[str, Any] = {}
    if meta is None:
        return out
    title = meta.find("title-group/article-title")
    out["title"] = inline.text(title) if title is not None else None
    authors: list[str] = []
    for contrib in meta.iter("contrib"):
        if contrib.get("contrib-type", "author") != "author":
            continue
        name = contrib.find("name")
        if name is not None:
            parts = [name.findtext("given-names"), name.findtext("surname")]
            authors.append(clean(" ".join(p for p in parts if p)))
        elif contrib.find("collab") is not None:
            authors.append(clean("".join(contrib.find("collab").itertext())))
    out["authors"] = [a for a in authors if a]
    if journal is not None:
        jt = journal.find(".//journal-title")
        out["journal"] = clean("".join(jt.itertext())) if jt is not None else None
    ids = {(i.get("pub-id-type") or ""): clean(i.text or "") for i in meta.findall("article-id")}
    out["doi"] = ids.get("doi") or None
    pmc = ids.get("pmc") or ids.get("pmcid") or ""
    out["pmcid"] = (pmc if pmc.upper().startswith("PMC") else f"PMC{pmc}") if pmc else None
    out["pmid"] = ids.get("pmid") or None
    out["year"] = _year(meta)
    out["licence"] = _licence(root)
    if out["doi"]:
        out["url"] = f"https://doi.org/{out['doi']}"
    elif out["pmcid"]:
        out["url"] = f"https://pmc.ncbi.nlm.nih.gov/articles/{out['pmcid']}/"
    return out


class _Body:
    """Walks abstract, body and back matter into the builder."""

    def __init__(self, builder: TextBuilder, inline: _Inline) -> None:
        self.b = builder
        self.inline = inline

    def container(self, el: Any, level: int) -> None:
        for child in el:
            name = _local(child)
            if name in ("sec", "boxed-text", "app", "ack"):
                self.section(child, level)
            elif name == "p":
                self.paragraph(child, level)
            elif name in _BLOCK_ELEMENTS:
                self.block_element(child, level)
            elif name in ("disp-formula",):
                self.b.block(clean(self.inline._math(child)))
            elif name == "app-group":
                self.container(child, level)

    def section(self, el: Any, level: int) -> None:
        title_el = el.find("title")
        label = clean(el.findtext("label") or "") or None
        title = self.inline.text(title_el) if title_el is not None else ""
        if not title:
            title = {"ack": "Acknowledgements"}.get(_local(el), "")
        if title:
            parent = self.b.section
            back = is_back_matter(title) or (
                parent is not None and parent.kind == "back" and parent.level < level
            )
            self.b.heading(
                f"{label} {title}" if label else title,
                level,
                number=label,
                kind="back" if back else "section",
            )
            self.container(el, level + 1)
        else:
            self.container(el, level)

    def paragraph(self, el: Any, level: int) -> None:
        self.b.block(self.inline.text(el))
        for child in el.iter():
            inner = child is not el and _local(child) in (
                "fig",
                "table-wrap",
                "list",
                "disp-quote",
                "boxed-text",
            )
            if inner and not self._nested(child, el):
                self.block_element(child, level)

    @staticmethod
    def _nested(child: Any, para: Any) -> bool:
        """Whether ``child`` sits inside another block element within ``para`` (that one writes it)."""
        for a in child.iterancestors():
            if a is para:
                return False
            if _local(a) in _BLOCK_ELEMENTS:
                return True
        return False

    def block_element(self, el: Any, level: int) -> None:
        name = _local(el)
        if name == "fig":
            self.b.block(self.caption(el, "Figure"), "caption")
        elif name == "table-wrap":
            self.b.block(self.caption(el, "Table"), "caption")
            rows = [row for t in el.iter("table") for row in table_rows(t, self.inline)]
            # each footnote on its own (their labels and texts otherwise run together: "cancera Inclusion")
            foot = [self.inline.text(p) for f in el.iter("table-wrap-foot") for p in f.iter("p")]
            self.b.block("\n".join([*rows, *[f for f in foot if f]]), "table")
        elif name == "list":
            for item in el.iter("list-item"):
                paras = [self.inline.text(p) for p in item.findall("p")] or [self.inline.text(item)]
                self.b.block(" ".join(p for p in paras if p))
        elif name == "def-list":
            for item in el.iter("def-item"):
                self.b.block(self.inline.text(item))
        else:  # disp-quote, boxed-text
            self.container(el, level)

    def caption(self, el: Any, default: str) -> str:
        label = clean(el.findtext("label") or "") or default
        cap = el.find("caption")
        parts = [self.inline.text(c) for c in cap if _local(c) in ("title", "p")] if cap is not None else []
        body = " ".join(p for p in parts if p)
        sep = "" if label.endswith((".", ":", "|")) else "."
        return f"{label}{sep} {body}".strip()


def _carry_down(carry: dict[int, tuple[str, int]], col: int, cells: list[str]) -> int:
    """Append the spanning cells carried into ``col`` and the columns right after it, counting each one's
    rows down; the first column left free."""
    while col in carry:
        text, left = carry[col]
        cells.append(text)
        if left > 1:
            carry[col] = (text, left - 1)
        else:
            del carry[col]
        col += 1
    return col


def table_rows(table: Any, inline: _Inline) -> list[str]:
    """Rows as "cell | cell" lines in reading order; a row-spanning cell is carried down to the rows it spans."""
    rows: list[str] = []
    carry: dict[int, tuple[str, int]] = {}  # column -> (text, rows left)
    for tr in table.iter("tr"):
        cells: list[str] = []
        col = 0
        for cell in tr:
            if _local(cell) not in ("td", "th"):
                continue
            col = _carry_down(carry, col, cells)
            text = inline.text(cell)
            span = int(cell.get("rowspan", "1") or 1) if (cell.get("rowspan") or "1").isdigit() else 1
            width = int(cell.get("colspan", "1")) if (cell.get("colspan") or "1").isdigit() else 1
            cells.append(text)
            if span > 1:
                carry[col] = (text, span - 1)
            col += max(1, width)
        _carry_down(carry, col, cells)  # spans past the row's last own cell
        line = " | ".join(c for c in cells if c)
        if line:
            rows.append(line)
    return rows


def reference_text(ref: Any, inline: _Inline) -> tuple[str, str | None, str | None]:
    """(text, doi, pmid) of one <ref>: mixed citations as written, element citations assembled."""
    kinds = ("mixed-citation", "element-citation", "citation")
    found = [c for c in ref.iter() if _local(c) in kinds]  # also inside <citation-alternatives>
    cit = next((c for c in found if _local(c) == "mixed-citation"), found[0] if found else None)
    if cit is None:
        return inline.text(ref), None, None
    ids = {(p.get("pub-id-type") or ""): clean(p.text or "") for p in cit.iter("pub-id")}
    structured = not (cit.text or "").strip() and not any((c.tail or "").strip() for c in cit)
    if _local(cit) == "mixed-citation" and not structured:  # punctuated as printed
        return inline.text(cit), ids.get("doi"), ids.get("pmid")
    names = []
    for person in cit.iter("name"):
        names.append(clean(f"{person.findtext('surname') or ''} {person.findtext('given-names') or ''}"))
    pieces = [", ".join(names)] if names else []
    for child in cit:
        if _local(child) in ("person-group", "name", "pub-id", "etal"):
            continue
        text = clean("".join(child.itertext()))
        if text:
            pieces.append(text)
    return clean(". ".join(pieces)), ids.get("doi"), ids.get("pmid")


def _main_abstract(root: Any) -> Any | None:
    for ab in root.iterfind(".//front/article-meta/abstract"):
        if (ab.get("abstract-type") or "") not in ("graphical", "teaser", "toc", "short", "web-summary"):
            return ab
    return None


class JatsReader:
    name = "jats"
    suffixes: tuple[str, ...] = (".xml", ".nxml")

    def read(self, path: Path) -> ParsedText:
        root = parse_xml(path, path.read_bytes())
        if _local(root) != "article":
            raise CorpusError(f"{path}: XML root is <{_local(root)}>, not a JATS/NLM <article>")
        refs = _Refs(root)
        inline = _Inline(refs)
        builder = TextBuilder()
        walk = _Body(builder, inline)
        abstract = _main_abstract(root)
        if abstract is not None:
            builder.heading("Abstract", 1, kind="abstract")
            walk.container(abstract, 2)
        body = root.find("body")
        if body is not None:
            walk.container(body, 1)
        back = root.find("back")
        if back is not None:
            for child in back:
                if _local(child) in ("sec", "ack", "app-group", "app"):
                    walk.container(child, 1) if _local(child) == "app-group" else walk.section(child, 1)
        if refs.elements:
            builder.heading("References", 1, kind="references")
            for i, ref in enumerate(refs.elements, 1):
                text, doi, pmid = reference_text(ref, inline)
                number = refs.numbers.get(ref.get("id") or "", i)
                builder.reference(Reference(number, str(number), text, doi=doi, pmid=pmid))
        text, blocks, sections = builder.build()
        if not text.strip():
            raise CorpusError(f"{path}: the XML has no article text")
        return ParsedText(text, blocks, sections, metadata(root, inline), [], builder.references)
