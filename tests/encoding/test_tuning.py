"""Process-wide tuning: its policies, and that only `qa serve` applies it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import faiss
import pytest

from qa.encoding import Embedder
from qa.encoding.tuning import (
    GIL_SWITCH_SECONDS,
    apply_serving_tuning,
    model_processes,
    serving_threads,
    wide_threads,
)
from qa.services import Services
from qa.settings import Settings


def test_thread_and_process_counts() -> None:
    assert serving_threads(3) == 3 and serving_threads(0) == max(1, (os.cpu_count() or 1) - 1)
    assert serving_threads(0, processes=64) == 1
    assert wide_threads(2) == 2 and wide_threads(0) == (os.cpu_count() or 1)
    assert model_processes(2) == 2 and 1 <= model_processes(0) <= 4


@pytest.fixture
def restored_tuning() -> Iterator[None]:
    interval, omp = sys.getswitchinterval(), faiss.omp_get_max_threads()
    yield
    sys.setswitchinterval(interval)
    faiss.omp_set_num_threads(omp)


@pytest.mark.usefixtures("restored_tuning")
def test_services_leave_the_process_alone_and_serve_tunes_it(
    settings: Settings, embedder: Embedder, built_index: Path
) -> None:
    sys.setswitchinterval(0.005)
    Services.start(settings, embedder=embedder).close()
    assert sys.getswitchinterval() == pytest.approx(0.005)
    apply_serving_tuning(settings)
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_SECONDS)
    assert faiss.omp_get_max_threads() == 1
