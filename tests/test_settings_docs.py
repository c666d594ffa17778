"""Every setting has a description, a row in the README's table and a flag of `qa serve`."""

from __future__ import annotations

import pytest

from qa.cli import build_parser
from qa.settings import Settings
from qa.settings_docs import README, documented_region, env_name, flag_name, render_table, replace_region


def test_every_setting_has_a_description() -> None:
    missing = [name for name, info in Settings.model_fields.items() if not (info.description or "").strip()]
    assert not missing, f"settings without a description: {missing}"


def test_every_setting_is_documented_in_the_readme() -> None:
    region = documented_region(README.read_text(encoding="utf-8"))
    assert region, "README.md lacks the <!-- settings:start --> ... <!-- settings:end --> region"
    missing = [env_name(name) for name in Settings.model_fields if f"`{env_name(name)}`" not in region]
    assert not missing, f"not in the README settings table: {missing}; run python -m qa.settings_docs"


def test_readme_table_is_up_to_date() -> None:
    text = README.read_text(encoding="utf-8")
    assert replace_region(text, render_table()) == text, "run python -m qa.settings_docs"


def test_the_issue_settings_exist() -> None:
    wanted = {
        "model",
        "corpus_dir",
        "index_dir",
        "host",
        "port",
        "workers",
        "cors_origins",
        "frame_ancestors",
        "rate_limit_per_minute",
        "log_format",
        "log_level",
    }
    assert wanted <= set(Settings.model_fields)


def test_serve_help_lists_every_setting_as_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    missing = [flag_name(name) for name in Settings.model_fields if flag_name(name) not in out]
    assert not missing, f"`qa serve --help` lacks {missing}"


def test_replace_region_keeps_the_rest_of_the_readme() -> None:
    text = "intro\n<!-- settings:start -->\nold\n<!-- settings:end -->\nafter\n"
    assert (
        replace_region(text, "new") == "intro\n<!-- settings:start -->\nnew\n<!-- settings:end -->\nafter\n"
    )
    with pytest.raises(ValueError):
        replace_region("no markers", "new")
