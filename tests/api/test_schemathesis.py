"""Property-based API testing: the schemathesis CLI, every check and phase, against the app on a live port.

The same run by hand, against any server: ``.venv/bin/schemathesis --config-file tests/schemathesis.toml
run http://127.0.0.1:8000/openapi.json --checks all -H "X-API-Key: $QA_API_KEY"``
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from live_server import serve

from qa.api.app import create_app
from qa.services import Services

TESTS = Path(__file__).resolve().parents[1]  # schemathesis.toml sits at the top of tests/
API_KEY = "schemathesis-test-key-0123456789"
MAX_EXAMPLES = 100  # per operation and phase: under a minute on two cores


@pytest.mark.slow
def test_api_conforms_to_its_schema_under_generated_requests(services: Services, tmp_path: Path) -> None:
    # The rate limit is off: schemathesis is one very fast client (429 is tested in test_limits.py).
    # The run adds and removes documents: it works on copies of the corpus and the index, never on the
    # repository's corpus folder or the session's index.
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(services.settings.corpus_dir, corpus)
    shutil.copytree(services.settings.index_dir, index, symlinks=True)
    settings = services.settings.model_copy(
        update={"rate_limit_per_minute": 0, "api_key": API_KEY, "corpus_dir": corpus, "index_dir": index}
    )
    own = Services.start(settings, embedder=services.embedder)
    with serve(create_app(settings, services=own)) as url:
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "--config-file",
                str(TESTS / "schemathesis.toml"),
                "--no-color",
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--generation-database",
                "none",
                "--seed",
                "7",
                "--header",
                f"X-API-Key: {API_KEY}",
                "--report-dir",
                str(tmp_path / "report"),
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "NO_COLOR": "1"},
        )
    summary = run.stdout[run.stdout.rfind("SUMMARY") - 40 :]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    # Every generated case passed; warnings may remain for the document routes (random ids are 404s, random
    # bytes are no paper), which a schema cannot rule out.
    assert "❌" not in summary and re.search(r"\d+ generated, \d+ passed", summary), summary
    for warning in re.findall(r"⚠️ (.*)", summary):
        assert warning.startswith(("Missing test data", "Schema validation mismatch")), summary
