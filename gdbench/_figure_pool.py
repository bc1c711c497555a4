"""Figures written by worker processes while the caller goes on: a report's PNG files on idle cores.

Most of a report's figure is its ``savefig``: layout, text, rendering and PNG
encoding, a few tenths of a second each. :class:`FigurePool` hands that part
to processes of its own: the caller draws a figure as ever (the plotting
functions call :func:`save`), the pool takes it, pickled, at its ``savefig``
and a worker writes it, whole (:func:`gdbench._files.written_whole`), while
the caller draws the next figure or trains trials again. A figure written from
its pickle is byte for byte the one ``savefig`` writes in the caller.

The workers are started with ``spawn`` (never forked from a process that runs
TensorFlow's threads) and import Matplotlib and this module alone: they get
the figure, its file, the caller's ``rcParams`` and ``savefig``'s arguments.
A worker's error is raised in the caller, as ``savefig``'s own would be; an
exception in the caller (``KeyboardInterrupt`` included) ends the workers.
Without workers (``workers=0``, or a machine of one core), the figures are
written in the caller, one by one, as before.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import matplotlib
from matplotlib.figure import Figure

from gdbench._files import written_whole

__all__ = ["MAX_WORKERS", "FigurePool", "default_workers", "save"]

#: A pool has at most this many workers.
MAX_WORKERS = 2

_capturing = threading.local()


def default_workers() -> int:
    """The workers of a pool by default: one a core, at most :data:`MAX_WORKERS`; 0 (the
    caller writes) on a machine of one core.

    The caller's own part (Optuna's plots drawn, trials trained again) ends first:
    the workers' part, written while it runs, is the longer one.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(MAX_WORKERS, cores or 1) if (cores or 1) > 1 else 0


def save(figure: Figure, target: Path, *, quiet: bool = False, **savefig: Any) -> None:
    """``figure.savefig(target, **savefig)``, or, inside :meth:`FigurePool.write`, the
    figure handed to the pool's workers.

    Args:
        figure: the figure.
        target: its file.
        quiet: Matplotlib's warnings while saving are ignored.
        **savefig: ``savefig``'s arguments (``dpi``, ``format``, ``bbox_inches``, ...).
    """
    capture = getattr(_capturing, "capture", None)
    if capture is not None and capture(figure, Path(target), quiet, savefig):
        return
    _savefig(figure, target, quiet, savefig)


def _savefig(figure: Figure, target: Path, quiet: bool, savefig: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        figure.savefig(target, **savefig)


class _Handed(Exception):
    """The figure went to a worker."""


class FigurePool:
    """Worker processes that write the figures drawn inside :meth:`write`.

    Used as a context manager: leaving it normally waits for every figure and
    raises the first worker's error; leaving it by an exception ends the
    workers at once.

    Args:
        workers: the worker processes; ``None`` for :func:`default_workers`, 0 to
            write every figure in the caller.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else workers
        self._pool: Any = None
        self._pending: list[Any] = []
        self._errors: list[BaseException] = []

    def __enter__(self) -> Self:
        if self.workers > 0:
            self._start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: types.TracebackType | None) -> None:
        if kind is None:
            self.finish()
        else:
            self.terminate()

    def _start(self) -> None:
        import multiprocessing

        # A spawned process runs the caller's main script again unless it is
        # guarded by ``if __name__ == "__main__"``; the workers need nothing of it.
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self._pool = multiprocessing.get_context("spawn").Pool(
                self.workers, initializer=_start_worker)
        finally:
            sys.modules["__main__"] = main

    def write(self, path: Path, draw: Callable[[Path], Any],
              written: Callable[[], None] | None = None) -> None:
        """``draw(target)`` draws a figure and saves it at ``target`` (by :func:`save`):
        written whole at ``path``, by a worker where the pool has any.

        Args:
            path: the figure's file.
            draw: draws the figure, saving it at the path it is given.
            written: called once the file is written: by a thread of the pool where
                it has workers (a progress bar counts there while the caller trains).
        """
        done = written or (lambda: None)
        if self._pool is None:
            with written_whole(path) as partial:
                draw(partial)
            done()
            return
        sent: list[Any] = []
        try:
            with written_whole(path) as partial:

                def capture(figure: Figure, target: Path, quiet: bool,
                            savefig: dict[str, Any]) -> bool:
                    if target != partial or sent:
                        return False
                    try:
                        data = pickle.dumps(figure)
                    except Exception:  # noqa: BLE001 - one that cannot be pickled is saved here
                        return False
                    rc = {key: value for key, value in matplotlib.rcParams.items()
                          if key != "backend"}
                    sent.append(self._pool.apply_async(
                        _write, (data, str(path), quiet, savefig, rc),
                        callback=lambda _: self._notify(done)))
                    return True

                _capturing.capture = capture
                try:
                    draw(partial)
                finally:
                    _capturing.capture = None
                if sent:
                    # Nothing to rename over ``path``: a worker writes it.
                    raise _Handed
        except _Handed:
            self._pending.append(sent[0])
            return
        done()

    def _notify(self, done: Callable[[], None]) -> None:
        # In the pool's thread: an error here is raised by :meth:`wait`, not lost.
        try:
            done()
        except BaseException as error:  # noqa: BLE001 - raised again in the caller
            self._errors.append(error)

    def wait(self) -> None:
        """Wait for every figure handed to the workers so far; the first worker's error is
        raised here, the warnings they gave warned here."""
        while self._pending:
            for message, category in self._pending.pop(0).get():
                warnings.warn(message, category, stacklevel=2)
        if self._errors:
            raise self._errors.pop(0)

    def finish(self) -> None:
        """Wait for every figure and end the workers; the first worker's error is raised."""
        try:
            self.wait()
        except BaseException:
            self.terminate()
            raise
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def terminate(self) -> None:
        """End the workers now; figures not yet written are not written."""
        self._pending.clear()
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def _start_worker() -> None:
    import signal

    # Ctrl-C reaches the whole process group: the caller ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    matplotlib.use("Agg")


def _write(data: bytes, path: str, quiet: bool, savefig: dict[str, Any],
           rc: dict[str, Any]) -> list[tuple[str, type[Warning]]]:
    """In a worker: write the pickled figure at ``path`` as the caller would have; the
    warnings it gave."""
    import matplotlib.pyplot as plt

    with warnings.catch_warnings(record=True) as caught, matplotlib.rc_context(rc):
        warnings.simplefilter("ignore" if quiet else "always")
        figure = pickle.loads(data)
        try:
            with written_whole(Path(path)) as partial:
                figure.savefig(partial, **savefig)
        finally:
            plt.close(figure)
    return [(str(warning.message), warning.category) for warning in caught]
