"""Query micro-batching: concurrent questions share forward passes, get their own vectors, repeats are cached."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import run_coroutine

from qa.batching import (
    EmbeddingCache,
    ProcessEncoder,
    QueryBatcher,
    model_processes,
    query_encoder,
    serving_threads,
)
from qa.embedding import Embedder
from qa.settings import Settings

QUESTIONS = [
    f"What is the objective response rate of {drug} in {disease}?"
    for drug in ("pembrolizumab", "nivolumab", "ipilimumab", "atezolizumab")
    for disease in ("melanoma", "non-small cell lung cancer", "renal cell carcinoma", "bladder cancer")
]


def test_concurrent_questions_share_forward_passes_and_get_their_own_vectors(embedder: Embedder) -> None:
    calls: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return embedder.encode(texts)

    batcher = QueryBatcher(encode, max_batch=8, wait_ms=20, cache_size=0)
    try:
        with ThreadPoolExecutor(len(QUESTIONS)) as pool:
            vectors = list(pool.map(batcher.encode, QUESTIONS))
    finally:
        batcher.close()
    expected = embedder.encode(QUESTIONS)
    for got, want in zip(vectors, expected, strict=True):
        assert np.allclose(got, want, atol=1e-5)
    assert sum(calls) == len(QUESTIONS)
    assert len(calls) < len(QUESTIONS) and max(calls) <= 8
    assert batcher.stats.batches == len(calls) and batcher.stats.largest_batch == max(calls)


def test_a_lone_question_waits_at_most_the_window(embedder: Embedder) -> None:
    batcher = QueryBatcher(embedder.encode, max_batch=32, wait_ms=5, cache_size=0)
    try:
        batcher.encode("warm up")
        started = time.perf_counter()
        batcher.encode("Does pembrolizumab improve overall survival?")
        waited = time.perf_counter() - started
        model_only = time.perf_counter()
        embedder.encode(["Does nivolumab improve overall survival?"])
        model_only = time.perf_counter() - model_only
    finally:
        batcher.close()
    assert waited < model_only + 0.005 + 0.25  # the window plus scheduling slack on a busy machine


def test_repeated_questions_hit_the_cache_and_vectors_are_read_only(embedder: Embedder) -> None:
    batcher = QueryBatcher(embedder.encode, max_batch=4, wait_ms=0, cache_size=2)
    try:
        first = batcher.encode(QUESTIONS[0])
        again = batcher.encode(QUESTIONS[0])
        assert again is first and batcher.stats.cache_hits == 1 and batcher.stats.encoded == 1
        with pytest.raises(ValueError):
            first[0] = 1.0
        batcher.encode(QUESTIONS[1])
        batcher.encode(QUESTIONS[2])  # the cache holds two: the oldest (QUESTIONS[0]) is dropped
        assert batcher.cache.get(QUESTIONS[0]) is None and len(batcher.cache) == 2
    finally:
        batcher.close()


def test_identical_questions_in_one_batch_are_encoded_once() -> None:
    seen: list[list[str]] = []
    release = threading.Event()

    def encode(texts: list[str]) -> np.ndarray:
        release.wait(5)
        seen.append(texts)
        return np.ones((len(texts), 3), dtype=np.float32)

    batcher = QueryBatcher(encode, max_batch=16, wait_ms=50, cache_size=0)
    try:
        futures = [batcher.submit(t) for t in ["a", "b", "a", "a"]]
        release.set()
        assert all(f.result(5).shape == (3,) for f in futures)
    finally:
        batcher.close()
    assert seen == [["a", "b"]]


def test_an_encoder_error_reaches_every_waiting_caller_and_the_batcher_lives_on() -> None:
    def encode(texts: list[str]) -> np.ndarray:
        if "boom" in texts:
            raise RuntimeError("model failed")
        return np.zeros((len(texts), 3), dtype=np.float32)

    batcher = QueryBatcher(encode, max_batch=4, wait_ms=20, cache_size=8)
    try:
        futures = [batcher.submit("boom"), batcher.submit("fine")]
        for f in futures:
            with pytest.raises(RuntimeError, match="model failed"):
                f.result(5)
        assert batcher.encode("fine").shape == (3,)
    finally:
        batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("after close")


def test_encode_async_does_not_block_the_event_loop(embedder: Embedder) -> None:
    batcher = QueryBatcher(embedder.encode, max_batch=16, wait_ms=5, cache_size=0)

    async def main() -> tuple[list[np.ndarray], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        vectors = await asyncio.gather(*(batcher.encode_async(q) for q in QUESTIONS))
        task.cancel()
        return list(vectors), ticks

    try:
        vectors, ticks = run_coroutine(main())  # type: ignore[misc]
    finally:
        batcher.close()
    assert len(vectors) == len(QUESTIONS) and ticks > 1


def test_cache_of_size_zero_keeps_nothing() -> None:
    cache = EmbeddingCache(0)
    cache.put("a", np.zeros(3, dtype=np.float32))
    assert cache.get("a") is None and len(cache) == 0


def test_services_encode_query_uses_the_batcher(services) -> None:  # type: ignore[no-untyped-def]
    assert services.batcher is not None
    before = services.batcher.stats.encoded + services.batcher.stats.cache_hits
    vector = run_coroutine(services.encode_query("Which checkpoint inhibitors are approved for melanoma?"))
    assert vector.shape == (services.embedder.dim,)
    assert services.batcher.stats.encoded + services.batcher.stats.cache_hits == before + 1


def test_the_model_process_gives_the_same_vectors_and_comes_back_after_a_crash(embedder: Embedder) -> None:
    encoder = ProcessEncoder("all-MiniLM-L6-v2", threads=1)
    try:
        assert encoder.dim == embedder.dim
        assert np.allclose(encoder(QUESTIONS[:5]), embedder.encode(QUESTIONS[:5]), atol=1e-5)
        first = encoder.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        again = encoder(QUESTIONS[5:8])  # the batch that met the dead process is retried on a new one
        assert encoder.restarts == 1 and encoder.pid != first
        assert np.allclose(again, embedder.encode(QUESTIONS[5:8]), atol=1e-5)
    finally:
        encoder.close()
    assert encoder.pid is None
    with pytest.raises(RuntimeError, match="closed"):
        encoder(QUESTIONS[:1])


def test_the_model_process_is_a_setting(embedder: Embedder, settings: Settings) -> None:
    in_process = settings.model_copy(update={"model_process": False})
    assert query_encoder(in_process, embedder) == [embedder.encode]
    assert serving_threads(3) == 3 and serving_threads(0) == max(1, (os.cpu_count() or 1) - 1)
    assert serving_threads(0, processes=64) == 1
    assert model_processes(2) == 2 and 1 <= model_processes(0) <= 4


def test_several_model_processes_share_the_batches_and_a_lone_question_meets_the_first(
    embedder: Embedder, settings: Settings
) -> None:
    encoders = query_encoder(settings.model_copy(update={"model_processes": 2}), embedder)
    assert len(encoders) == 2 and all(isinstance(e, ProcessEncoder) for e in encoders)
    used: list[int] = []

    def tracking(i: int, encode):  # type: ignore[no-untyped-def]
        def run(texts: list[str]) -> np.ndarray:
            used.append(i)
            return encode(texts)

        run.close = encode.close  # type: ignore[attr-defined]
        return run

    batcher = QueryBatcher([tracking(i, e) for i, e in enumerate(encoders)], wait_ms=5, cache_size=0)
    try:
        for q in QUESTIONS[:4]:  # one at a time: always the first model
            assert np.allclose(batcher.encode(q), embedder.encode([q])[0], atol=1e-5)
        assert used == [0, 0, 0, 0]
        with ThreadPoolExecutor(8) as pool:  # together: both models work, every vector still right
            vectors = list(pool.map(batcher.encode, QUESTIONS * 3))
        assert set(used[4:]) == {0, 1}
        assert np.allclose(np.stack(vectors), embedder.encode(QUESTIONS * 3), atol=1e-5)
    finally:
        batcher.close()
    assert all(e.pid is None for e in encoders)  # closing the batcher stops its model processes


def test_a_lone_question_on_the_event_loop_goes_straight_to_the_model_process(embedder: Embedder) -> None:
    [encoder] = ProcessEncoder.start_many(1, "all-MiniLM-L6-v2", threads=1, wide_threads=2)
    batcher = QueryBatcher([encoder], wait_ms=5, cache_size=0)

    async def one(question: str) -> np.ndarray:
        with batcher.busy():
            return await batcher.encode_async(question)

    async def main() -> dict[str, object]:
        out: dict[str, object] = {"lone": await one(QUESTIONS[0]), "direct": batcher.stats.direct}
        # A caller that gives up while the model works: its reply is still read off the socket, so the
        # next question gets its own vector, not the stale one.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await one(QUESTIONS[1])
        out["after_timeout"] = await one(QUESTIONS[2])
        # Several at once: the first goes straight to the model, the others wait for the batching thread.
        out["together"] = await asyncio.gather(*(one(q) for q in QUESTIONS[3:9]))
        # The model process dies between questions: it is started again and the question still answered.
        os.kill(encoder.pid or 0, signal.SIGKILL)
        await asyncio.sleep(0.5)
        out["after_crash"] = await one(QUESTIONS[9])
        return out

    try:
        out = run_coroutine(main())
        assert isinstance(out, dict)
    finally:
        batcher.close()
    expected = embedder.encode(QUESTIONS[:10])
    assert out["direct"] == 1 and np.allclose(out["lone"], expected[0], atol=1e-5)
    assert np.allclose(out["after_timeout"], expected[2], atol=1e-5)
    assert np.allclose(np.stack(out["together"]), expected[3:9], atol=1e-5)  # type: ignore[arg-type]
    assert np.allclose(out["after_crash"], expected[9], atol=1e-5) and encoder.restarts == 1
    assert batcher.stats.direct >= 3 and encoder.pid is None
