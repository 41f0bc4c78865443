"""One background thread that sends run endings (closing batch + terminate) off the training loop's path.

Started lazily on first use (importing mlrig.tracking starts nothing). Work runs in submission order, so a
parent ended after its children is terminated after them. Pending work is finished at interpreter exit
(``concurrent.futures`` joins its worker threads then), and :func:`wait_for_background` drains it on demand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_pending: set[Future[object]] = set()


def _done(future: Future[object]) -> None:
    with _lock:
        _pending.discard(future)
    exc = future.exception()
    if exc is not None:  # the submitted callables record their own failures; this is a bug guard
        logger.error("background tracking task failed: %s: %s", type(exc).__name__, exc)


def submit_background(task: Callable[[], object]) -> Future[object]:
    """Run ``task`` on the tracking writer thread (FIFO)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlrig-tracking-writer")
        future: Future[object] = _executor.submit(task)
        _pending.add(future)
    future.add_done_callback(_done)
    return future


def wait_for_background(timeout: float | None = None) -> bool:
    """Block until every submitted task has finished (or ``timeout`` seconds passed); True when drained."""
    with _lock:
        pending = set(_pending)
    if not pending:
        return True
    _, not_done = wait(pending, timeout=timeout)
    return not not_done
