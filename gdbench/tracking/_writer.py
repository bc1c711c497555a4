"""The MLflow writer: one daemon thread running queued writes in order, waited for within a bound.

A daemon thread, unlike :class:`concurrent.futures.ThreadPoolExecutor`'s, is not
joined when the interpreter exits: a write retrying against an unreachable
tracking server (MLflow retries one request for minutes) never holds the
process. What the writer had not written when its process ended is in the
study's journal (:mod:`gdbench.tracking._journal`), replayed by the next start.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

__all__ = ["Writer"]

#: How often a wait looks again: a signal's handler runs between two looks.
_POLL_S = 0.1


class Writer:
    """Runs submitted writes one at a time, in order, in one daemon thread started on first use.

    Args:
        name: the thread's name.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple, dict]] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._unfinished = 0

    def submit(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``write(*args, **kwargs)``; its future gives its result or its error."""
        future: Future[Any] = Future()
        with self._lock:
            self._unfinished += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put((future, write, args, kwargs))
        return future

    @property
    def unfinished(self) -> int:
        """Writes queued or running."""
        return self._unfinished

    def wait(self, timeout_s: float | None) -> bool:
        """Wait for every write queued so far, ``timeout_s`` at most (``None``: no bound).

        The wait looks every 0.1 s, so a signal's handler runs, and what it
        raises ends the wait.

        Returns:
            Whether they were all written (successfully or not) in time.
        """
        marker = self.submit(lambda: None)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not marker.done():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            try:
                marker.result(_POLL_S)
            except TimeoutError:
                pass
        return True

    def _run(self) -> None:
        while True:
            future, write, args, kwargs = self._queue.get()
            error: BaseException | None = None
            result = None
            running = future.set_running_or_notify_cancel()
            if running:
                try:
                    result = write(*args, **kwargs)
                except BaseException as failure:  # noqa: BLE001 - handed to the future
                    error = failure
            # Counted before the future is done: a waiter woken by it sees the count.
            with self._lock:
                self._unfinished -= 1
            if running and error is not None:
                future.set_exception(error)
            elif running:
                future.set_result(result)
