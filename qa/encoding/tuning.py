"""Process-wide tuning of a serving process and its model processes, in one place.

Everything here changes state shared by the whole process (torch's and FAISS's thread pools, the GIL's
switch interval, a process's scheduling priority), so only ``qa serve`` applies it
(``apply_serving_tuning``); a library user, a test or ``qa ask`` keeps the interpreter's defaults.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.settings import Settings

# Forward passes yield to the server process: its short bursts of request handling then never queue
# behind a pass on a machine whose cores the models keep busy.
MODEL_NICENESS = 5

# By default a thread that wants the GIL waits up to 5 ms for the event loop to let go of it. The server
# process still has a few threads (an in-process model's, the conversation store's writer, sync routes'
# pool); a short interval keeps them from stalling behind a busy loop, at a negligible cost to the loop.
GIL_SWITCH_SECONDS = 0.0005


def serving_threads(configured: int, processes: int = 1) -> int:
    """torch threads per query-model process under load: the setting, or (0) the cores but one, shared
    out between the ``processes`` (at least one each).

    The request pipeline (parsing, BM25, answer extraction) needs a core of its own: torch spinning on
    every core starves it, and a forward pass contending with it for a core runs many times slower than
    one with a core to itself.
    """
    return configured or max(1, ((os.cpu_count() or 1) - 1) // max(1, processes))


def wide_threads(configured: int) -> int:
    """torch threads for a lone question (nothing else in the server): the setting, or every core."""
    return configured or os.cpu_count() or 1


def model_processes(configured: int) -> int:
    """Query-model processes for a server: the setting, or (0) one per core, at most four.

    Each runs single-threaded under load, so when the request pipeline takes a core for a moment the
    others carry on, where one multi-threaded model would stall at every barrier of its thread team.
    More processes than cores only compete with each other (figures in README and bench/results).
    """
    return configured or max(1, min(os.cpu_count() or 1, 4))


def apply_serving_tuning(settings: Settings) -> None:
    """Tune this process for serving: called once by ``qa serve`` in each server process it starts."""
    del settings  # every knob below is fixed today; the settings are the place for any that is not
    import faiss

    # One query at a time needs no OpenMP team: on a machine whose cores the query models keep busy,
    # FAISS's threads would only wait on each other.
    faiss.omp_set_num_threads(1)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
