"""The query batcher: lone questions go straight to a model, concurrent ones share forward passes and get
their own vectors, repeats are cached, callers who give up or a model that dies leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import numpy as np
import pytest
from conftest import run_coroutine

from qa.encoding import Embedder
from qa.encoding.batcher import QueryBatcher
from qa.encoding.worker import ProcessEncoder
from qa.services import Services

MODEL = "all-MiniLM-L6-v2"
QUESTIONS = [
    f"What is the objective response rate of {drug} in {disease}?"
    for drug in ("pembrolizumab", "nivolumab", "ipilimumab", "atezolizumab")
    for disease in ("melanoma", "non-small cell lung cancer", "renal cell carcinoma", "bladder cancer")
]


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` on a fresh event loop (every call a new one: the batcher moves between them)."""
    result = run_coroutine(coro)
    return result  # type: ignore[return-value]


def close_to(got: np.ndarray, want: np.ndarray) -> bool:
    return bool(np.allclose(got, want, atol=1e-5))


@pytest.fixture(scope="module")
def process_batcher() -> Iterator[QueryBatcher]:
    """Two model processes (one torch thread each, two for a lone question), no cache."""
    batcher = QueryBatcher(
        ProcessEncoder.start_many(2, MODEL, threads=1, wide_threads=2), wait_ms=5, cache_size=0
    )
    yield batcher
    batcher.close()


def processes(batcher: QueryBatcher) -> list[ProcessEncoder]:
    return [s.process for s in batcher._slots if s.process is not None]


async def idle(batcher: QueryBatcher) -> None:
    """Until no model works on a batch (a reply left by a caller who gave up is read and dropped): the
    batcher moves to this loop at its first question."""
    await batcher.encode("Is the batcher idle?")
    while any(s.busy for s in batcher._slots):
        await asyncio.sleep(0.01)


async def one(batcher: QueryBatcher, question: str) -> np.ndarray:
    """A question the way a request asks it: counted in flight for its whole life."""
    with batcher.busy():
        return await batcher.encode(question)


def test_a_lone_question_goes_straight_to_the_first_model_with_every_core(
    process_batcher: QueryBatcher, embedder: Embedder
) -> None:
    direct, batches = process_batcher.stats.direct, process_batcher.stats.batches
    vector = run(one(process_batcher, QUESTIONS[0]))
    assert close_to(vector, embedder.encode([QUESTIONS[0]])[0])
    assert process_batcher.stats.direct == direct + 1 and process_batcher.stats.batches == batches + 1
    with pytest.raises(ValueError):
        vector[0] = 1.0  # shared with every caller of the same text: read-only


def test_concurrent_questions_share_forward_passes_and_get_their_own_vectors(
    process_batcher: QueryBatcher, embedder: Embedder
) -> None:
    batches, encoded = process_batcher.stats.batches, process_batcher.stats.encoded

    async def main() -> list[np.ndarray]:
        return list(await asyncio.gather(*(one(process_batcher, q) for q in QUESTIONS)))

    vectors = run(main())
    assert close_to(np.stack(vectors), embedder.encode(QUESTIONS))
    assert process_batcher.stats.encoded == encoded + len(QUESTIONS)
    assert process_batcher.stats.batches - batches < len(QUESTIONS)
    assert 1 < process_batcher.stats.largest_batch <= process_batcher.max_batch


def test_batches_on_uvloop_arrive_whole_and_no_model_is_taken_for_dead(
    process_batcher: QueryBatcher, embedder: Embedder
) -> None:
    """``qa serve`` runs on uvloop, whose readers make the model sockets non-blocking and whose timer
    handles have no ``when()``: many questions at once (replies of tens of kilobytes, batching windows
    re-armed) must still get their own vectors, with no model process restarted."""
    import uvloop

    questions = [f"{q} (variant {i})" for i in range(8) for q in QUESTIONS]
    restarts = [p.restarts for p in processes(process_batcher)]

    async def main() -> list[np.ndarray]:
        return list(await asyncio.gather(*(one(process_batcher, q) for q in questions)))

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        vectors = pool.submit(uvloop.run, main()).result()
    assert close_to(np.stack(vectors), embedder.encode(questions))
    assert [p.restarts for p in processes(process_batcher)] == restarts
    assert process_batcher.stats.largest_batch > 1


def test_a_caller_who_gives_up_leaves_no_reply_for_the_next(
    process_batcher: QueryBatcher, embedder: Embedder
) -> None:
    async def main() -> list[np.ndarray]:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await one(process_batcher, QUESTIONS[1])
        after_timeout = await one(process_batcher, QUESTIONS[2])
        task = asyncio.create_task(one(process_batcher, QUESTIONS[3]))
        await asyncio.sleep(0)  # sent to the model
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return [after_timeout, await one(process_batcher, QUESTIONS[4])]

    after_timeout, after_cancel = run(main())
    expected = embedder.encode(QUESTIONS[1:5])
    assert close_to(after_timeout, expected[1]) and close_to(after_cancel, expected[3])


def test_a_model_process_that_dies_is_restarted_and_the_question_answered(
    process_batcher: QueryBatcher, embedder: Embedder
) -> None:
    run(idle(process_batcher))
    first = processes(process_batcher)[0]
    pid, restarts = first.pid, first.restarts
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    vector = run(one(process_batcher, QUESTIONS[5]))  # a lone question meets the dead first model
    assert close_to(vector, embedder.encode([QUESTIONS[5]])[0])
    assert first.restarts == restarts + 1 and first.pid not in (None, pid)


def test_one_batcher_serves_one_event_loop_after_another(
    process_batcher: QueryBatcher, embedder: Embedder
) -> None:
    async def leave_one_in_flight() -> None:
        asyncio.get_running_loop().create_task(process_batcher.encode(QUESTIONS[6]))
        await asyncio.sleep(0)  # sent; the loop then closes with its reply still to come

    run(leave_one_in_flight())
    # The next loop reads that reply (and drops it), then answers its own questions with the right vectors.
    second = run(one(process_batcher, QUESTIONS[7]))
    third = run(one(process_batcher, QUESTIONS[8]))
    expected = embedder.encode(QUESTIONS[7:9])
    assert close_to(second, expected[0]) and close_to(third, expected[1])
    run(idle(process_batcher))  # no reply is left on a socket: every model comes free
    assert all(not s.busy and s.reader is None for s in process_batcher._slots)


def test_a_call_from_a_second_live_loop_is_relayed_to_the_loop_with_work_in_flight(
    process_batcher: QueryBatcher, embedder: Embedder
) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        started = threading.Event()

        async def many() -> list[np.ndarray]:
            calls = [asyncio.create_task(process_batcher.encode(q)) for q in QUESTIONS]
            await asyncio.sleep(0)  # all sent or queued: this loop has work in flight
            started.set()
            return list(await asyncio.gather(*calls))

        on_first = asyncio.run_coroutine_threadsafe(many(), loop)
        assert started.wait(10)
        from_second = run(process_batcher.encode(QUESTIONS[9]))
        vectors = on_first.result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert close_to(np.stack(vectors), embedder.encode(QUESTIONS))
    assert close_to(from_second, embedder.encode([QUESTIONS[9]])[0])


def test_close_fails_every_waiting_caller_and_stops_the_model_processes() -> None:
    batcher = QueryBatcher(ProcessEncoder.start_many(1, MODEL, threads=1), wait_ms=5, cache_size=0)
    [encoder] = processes(batcher)

    async def main() -> list[BaseException | np.ndarray]:
        calls = [asyncio.create_task(batcher.encode(q)) for q in QUESTIONS[:6]]
        await asyncio.sleep(0)  # one batch in the model, the others queued
        await asyncio.to_thread(batcher.close)  # from another thread, as a server's shutdown may
        return list(await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10))

    outcomes = run(main())
    assert all(isinstance(o, RuntimeError) and "closed" in str(o) for o in outcomes), outcomes
    assert encoder.pid is None
    with pytest.raises(RuntimeError, match="closed"):
        run(batcher.encode("after close"))


# --- an in-process model: the forward pass runs on a thread ------------------------------------------
def test_in_process_questions_are_batched_on_a_thread_without_blocking_the_loop(embedder: Embedder) -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return embedder.encode(texts)

    batcher = QueryBatcher(encode, max_batch=8, wait_ms=20, cache_size=0)

    async def main() -> tuple[list[np.ndarray], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        vectors = await asyncio.gather(*(one(batcher, q) for q in QUESTIONS))
        task.cancel()
        return list(vectors), ticks

    try:
        vectors, ticks = run(main())
    finally:
        batcher.close()
    assert close_to(np.stack(vectors), embedder.encode(QUESTIONS)) and ticks > 1
    sizes = [len(c) for c in calls]
    assert sum(sizes) == len(QUESTIONS) and sizes[0] == 1  # the first, alone then, went at once
    assert len(calls) < len(QUESTIONS) and max(sizes) <= 8
    assert batcher.stats.batches == len(calls) and batcher.stats.largest_batch == max(sizes)
    assert batcher.stats.direct == 0  # only a model process gets a lone question straight from the loop


def test_identical_questions_in_one_batch_are_encoded_once(embedder: Embedder) -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return embedder.encode(texts)

    batcher = QueryBatcher(encode, max_batch=16, wait_ms=50, cache_size=0)
    a, b = QUESTIONS[:2]

    async def main() -> list[np.ndarray]:
        with batcher.busy(), batcher.busy():  # other requests in flight: nobody is alone
            return list(await asyncio.gather(*(batcher.encode(t) for t in (a, b, a, a))))

    try:
        vectors = run(main())
    finally:
        batcher.close()
    assert calls == [[a, b]] and vectors[0] is vectors[2] is vectors[3]
    assert close_to(vectors[1], embedder.encode([b])[0])


def test_repeated_questions_hit_the_cache(embedder: Embedder) -> None:
    batcher = QueryBatcher(embedder.encode, max_batch=4, wait_ms=0, cache_size=2)

    async def main() -> None:
        first = await batcher.encode(QUESTIONS[0])
        again = await batcher.encode(QUESTIONS[0])
        assert again is first and batcher.stats.cache_hits == 1 and batcher.stats.encoded == 1
        await batcher.encode(QUESTIONS[1])
        await batcher.encode(QUESTIONS[2])  # the cache holds two: the oldest (QUESTIONS[0]) is dropped
        assert batcher.cache.get(QUESTIONS[0]) is None and len(batcher.cache) == 2

    try:
        run(main())
    finally:
        batcher.close()


def test_a_model_error_reaches_every_caller_of_the_batch_and_the_batcher_lives_on(
    embedder: Embedder,
) -> None:
    def encode(texts: list[str]) -> np.ndarray:
        if "boom" in texts:
            raise RuntimeError("model failed")
        return embedder.encode(texts)

    batcher = QueryBatcher(encode, max_batch=4, wait_ms=50, cache_size=8)

    async def main() -> tuple[list[BaseException | np.ndarray], np.ndarray]:
        with batcher.busy(), batcher.busy():  # not alone: the two share a batch
            together = await asyncio.gather(
                batcher.encode("boom"), batcher.encode(QUESTIONS[0]), return_exceptions=True
            )
        return list(together), await batcher.encode(QUESTIONS[0])

    try:
        together, after = run(main())
    finally:
        batcher.close()
    assert all(isinstance(o, RuntimeError) and "model failed" in str(o) for o in together)
    assert close_to(after, embedder.encode([QUESTIONS[0]])[0])


def test_services_encode_query_goes_through_the_batcher(services: Services) -> None:
    assert services.batcher is not None
    before = services.batcher.stats.encoded + services.batcher.stats.cache_hits
    vector = run(services.encode_query("Which checkpoint inhibitors are approved for melanoma?"))
    assert vector.shape == (services.embedder.dim,)
    assert services.batcher.stats.encoded + services.batcher.stats.cache_hits == before + 1
