"""Render the README's settings table from ``Settings``: ``python -m qa.settings_docs [--check] [README]``."""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from qa.settings import Settings

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"


def env_name(name: str) -> str:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if isinstance(value, list):
        return "`[]`" if not value else f"`{value!r}`"
    return f"`{value}`" if str(value) != "" else "(empty)"


def _allowed(info: FieldInfo) -> str:
    """Choices of a Literal field and numeric bounds, as a short suffix for the description."""
    if typing.get_origin(info.annotation) is typing.Literal:
        return " One of " + ", ".join(f"`{v}`" for v in typing.get_args(info.annotation)) + "."
    bounds = []
    for meta in info.metadata:
        for attr, symbol in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                bounds.append(f"{symbol} {value}")
    return f" Bounds: {', '.join(bounds)}." if bounds else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table() -> str:
    """The Markdown table: one row per setting, in the order ``Settings`` declares them."""
    lines = [
        "| environment variable | flag | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for name, info in Settings.model_fields.items():
        description = (info.description or "").strip() + _allowed(info)
        lines.append(
            f"| `{env_name(name)}` | `{flag_name(name)}` | {_cell(_default(info))} | {_cell(description)} |"
        )
    return "\n".join(lines)


def replace_region(text: str, table: str) -> str:
    """``text`` with everything between the settings markers replaced by ``table``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README has no {START} ... {END} region")
    return text[: start + len(START)] + "\n" + table + "\n" + text[end:]


def documented_region(text: str) -> str:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return ""
    return text[start + len(START) : end]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("readme", nargs="?", type=Path, default=README)
    parser.add_argument("--check", action="store_true", help="exit 1 when the README table is out of date")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    updated = replace_region(text, render_table())
    if args.check:
        if updated != text:
            print(f"{args.readme}: settings table is out of date; run python -m qa.settings_docs")
            return 1
        return 0
    if updated != text:
        args.readme.write_text(updated, encoding="utf-8")
        print(f"updated the settings table in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
