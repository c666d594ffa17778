"""The one rule for characters no request string may hold, shared by the request limits, the OpenAPI schema
and the question pipeline; slugs; and the rule for file names that are no UTF-8 text."""

from __future__ import annotations

import re

# C0 controls but tab, newline and carriage return; DEL; C1. Written as the body of a character class in
# escapes that Python's re and JSON Schema's ECMA-262 patterns both read, so the schema can state it verbatim.
CONTROL_CHARS = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"
_CONTROL = re.compile(f"[{CONTROL_CHARS}]")


def has_control_chars(text: str) -> bool:
    return _CONTROL.search(text) is not None


def slug(text: str) -> str:
    """Lower-case letters and digits joined by single dashes ("PIVOT-02 Trial" -> "pivot-02-trial")."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def is_utf8_name(name: str) -> bool:
    """Whether a file name from the system was UTF-8: bytes that are not come as lone surrogates
    (``os.fsdecode``), which no id, JSON answer or Arrow column can carry."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_name(name: str) -> str:
    """A file name or path as text for a message: bytes that are no UTF-8 shown as ``\\xff``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
