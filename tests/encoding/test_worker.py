"""The model process: the same vectors as the model in this process, and back after a crash."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from qa.encoding import Embedder
from qa.encoding.worker import ProcessEncoder, query_encoders
from qa.settings import Settings

QUESTIONS = [f"Does {drug} improve overall survival in melanoma?" for drug in ("nivolumab", "ipilimumab")] * 4


def test_the_model_process_gives_the_same_vectors_and_comes_back_after_a_crash(embedder: Embedder) -> None:
    encoder = ProcessEncoder("all-MiniLM-L6-v2", threads=1)
    try:
        assert encoder.dim == embedder.dim
        assert np.allclose(encoder(QUESTIONS[:5]), embedder.encode(QUESTIONS[:5]), atol=1e-5)
        first = encoder.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        again = encoder(QUESTIONS[5:8])  # the texts that met the dead process are sent to a new one
        assert encoder.restarts == 1 and encoder.pid != first
        assert np.allclose(again, embedder.encode(QUESTIONS[5:8]), atol=1e-5)
    finally:
        encoder.close()
    assert encoder.pid is None and encoder.closed
    with pytest.raises(RuntimeError, match="closed"):
        encoder(QUESTIONS[:1])


def test_the_model_process_is_a_setting(embedder: Embedder, settings: Settings) -> None:
    in_process = settings.model_copy(update={"model_process": False})
    assert query_encoders(in_process, embedder) == [embedder.encode]
