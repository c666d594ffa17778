"""The one rule for characters no request string may hold, shared by the request limits, the OpenAPI schema
and the question pipeline."""

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
