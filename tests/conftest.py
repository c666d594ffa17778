"""Shared fixtures: the real packaged model, the real corpus, one index built per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from qa.encoding import Embedder  # noqa: E402
from qa.index.build import build_index  # noqa: E402
from qa.pipeline import AskResult, ask  # noqa: E402
from qa.services import Services  # noqa: E402
from qa.settings import Settings  # noqa: E402

# the ``postgres`` fixture (a real PostgreSQL server for the session) and ``live_url`` (a live uvicorn server)
pytest_plugins = ["postgres_server", "live_server"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
SHARED = Path(os.environ.get("QA_SHARED_DIR") or ROOT.parent / "shared")  # eval sets, benchmarks
DOC_000 = "000_d6059957f8831505"
DOC_003 = "003_f380dd54a5265a4b"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(corpus_dir=CORPUS, index_dir=tmp_path_factory.mktemp("index"))


@pytest.fixture(scope="session")
def built_index(settings: Settings, embedder: Embedder) -> Path:
    return build_index(settings, embedder)


@pytest.fixture(scope="session")
def services(settings: Settings, embedder: Embedder, built_index: Path) -> Services:
    return Services.start(settings, embedder=embedder)


@pytest.fixture(scope="session")
def client(services: Services) -> Iterator[TestClient]:
    from qa.api.app import create_app

    with TestClient(create_app(services=services)) as c:
        yield c


def small_index(root: Path, docs: dict[str, str], embedder: Embedder, **overrides: object) -> Settings:
    """A corpus folder of ``docs`` (file name -> text) under ``root``, built into ``root/index``: the
    settings of a test server over it (rate limit off, warnings only, and ``overrides``)."""
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in docs.items():
        (corpus / name).write_text(text, encoding="utf-8")
    fields: dict[str, object] = {"rate_limit_per_minute": 0, "log_level": "WARNING", **overrides}
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", **fields)  # type: ignore[arg-type]
    build_index(settings, embedder)
    return settings


def run_coroutine(coro: object) -> object:
    """asyncio.run on a fresh thread: Playwright's sync API keeps an event loop running on the main thread
    for the rest of a session that ran browser tests, and asyncio.run refuses to start inside one."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


def ask_blocking(
    services: Services,
    question: str,
    *,
    conversation_id: str | None = None,
    top_k: int = 5,
    documents: list[str] | None = None,
) -> AskResult:
    """The pipeline's ``ask``, awaited on an event loop of its own (see run_coroutine)."""
    result = run_coroutine(
        ask(services, question, conversation_id=conversation_id, top_k=top_k, documents=documents)
    )
    assert isinstance(result, AskResult)
    return result
