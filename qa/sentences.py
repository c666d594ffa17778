"""Sentence boundaries with character offsets, tuned for biomedical prose ("et al.", "59.5%", "CD8+ T cells")."""

from __future__ import annotations

import re

# Tokens that end with a period without ending a sentence (compared lower-case, without the period).
ABBREVIATIONS = frozenset(
    [
        "al",
        "e.g",
        "eg",
        "i.e",
        "ie",
        "vs",
        "v",
        "fig",
        "figs",
        "ref",
        "refs",
        "approx",
        "ca",
        "cf",
        "no",
        "nos",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "eq",
        "eqs",
        "ltd",
        "inc",
        "co",
        "jr",
        "sr",
        "vol",
        "vols",
        "pp",
        "p",
        "resp",
        "incl",
        "excl",
        "etc",
        "u.s",
        "u.k",
        "sp",
        "spp",
        "var",
        "min",
        "max",
        "mol",
        "wt",
        "dept",
        "univ",
        "suppl",
        "ed",
        "eds",
        "ph.d",
        "m.d",
        "b.i.d",
        "t.i.d",
        "q.d",
        "i.v",
        "i.p",
        "s.c",
        "p.o",
        "e.v",
    ]
)

_CANDIDATE = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+)")
_NEXT_START = re.compile(r"\s+([\"'“‘(\[]?)([A-Z0-9α-ωΑ-Ω])")
_MAX_PAREN_SPAN = 400  # an opening bracket not closed within this many characters is ignored


def _protected_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Ranges inside balanced (...) or [...] where a period never ends a sentence."""
    spans: list[tuple[int, int]] = []
    stack: list[int] = []
    for i in range(start, end):
        ch = text[i]
        while stack and i - stack[0] > _MAX_PAREN_SPAN:
            stack.pop(0)  # never closed: stop protecting from it
        if ch in "([":
            stack.append(i)
        elif ch in ")]" and stack:
            opened = stack.pop()
            if not stack:
                spans.append((opened, i))
    return spans


def _previous_token(text: str, dot: int, floor: int) -> str:
    i = dot
    while i > floor and not text[i - 1].isspace() and text[i - 1] not in "([":
        i -= 1
    return text[i:dot]


# Words after which a lone capital is a person's initial ("and A. Jones", "by J. Smith"), not a label.
_NAME_LEADS = frozenset(["and", "or", "by", "with", "from"])
_LONE_CAPITAL = re.compile(r"[A-Z]")
_NEXT_INITIAL = re.compile(r"\s+[A-Z]\.")  # "A. B. Smith": initials in a row are a name


def _is_label(text: str, dot: int, floor: int) -> bool:
    """A lone capital that labels a group or arm ("group A.", "arm C.", "groups A, B and C."): the list of
    lone capitals it ends follows a lower-case word (a name's initial follows a name, or "and" after one)."""
    words = [w.rstrip(",") for w in text[floor:dot].split()]
    if not words or not _LONE_CAPITAL.fullmatch(words[-1]):
        return False
    k = len(words) - 1
    while k > 0 and (
        _LONE_CAPITAL.fullmatch(words[k - 1])
        or (words[k - 1] in ("and", "or") and k > 1 and _LONE_CAPITAL.fullmatch(words[k - 2]))
    ):
        k -= 1  # back over "A, B and C" to the list's first label
    before = words[k - 1] if k > 0 else ""
    return before.isalpha() and before.islower() and before not in _NAME_LEADS


def _is_abbreviation(token: str) -> bool:
    bare = token.strip("\"'“‘").lower()
    if bare in ABBREVIATIONS:
        return True
    # Initials such as "J." or "A.B." (but not "B12." or "IL-2.")
    return bool(re.fullmatch(r"(?:[A-Za-z]\.)*[A-Z]", token))


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Return (start, end) offsets of the sentences in ``text[start:end]``, whitespace trimmed.

    A boundary is sentence punctuation followed by white space and a capital, digit or opening
    bracket, and not inside brackets, after an abbreviation, or after an initial.
    """
    end = len(text) if end is None else end
    protected = _protected_spans(text, start, end)
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _CANDIDATE.finditer(text, start, end):
        dot = match.start()
        if any(lo < dot < hi for lo, hi in protected):
            continue
        nxt = _NEXT_START.match(text, match.end(), end)
        if not nxt:
            continue
        if (
            text[dot] == "."
            and _is_abbreviation(_previous_token(text, dot, cursor))
            and not (_is_label(text, dot, cursor) and not _NEXT_INITIAL.match(text, match.end(), end))
        ):
            continue
        spans.append((cursor, match.end()))
        cursor = nxt.start(1) if nxt.group(1) else nxt.start(2)
    spans.append((cursor, end))
    return [trimmed for s, e in spans if (trimmed := _trim(text, s, e))]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None
