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

Two things make a worker's ``savefig`` cheaper, its file unchanged:

- its renderers share one mathtext parser (:func:`share_mathtext`): Matplotlib
  gives each renderer a parser of its own, so a log axis' tick labels
  (``$\\mathdefault{10^{-3}}$``) are parsed again for every figure, about a
  fifth of a report's ``savefig`` CPU;
- :func:`save` writes PNG files at zlib level :data:`PNG_COMPRESS_LEVEL` (Pillow's
  ``compress_level``, 6 by default): the encoding costs about 40 % less for
  files about a tenth larger (figures written in the caller get the same level).
"""

from __future__ import annotations

import functools
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
from matplotlib.mathtext import MathTextParser

from gdbench._files import written_whole

__all__ = ["MAX_WORKERS", "PNG_COMPRESS_LEVEL", "FigurePool", "default_workers", "save",
           "share_mathtext"]

#: A pool has at most this many workers.
MAX_WORKERS = 2

#: zlib's compression level of the PNG files :func:`save` writes (Pillow's default is 6).
PNG_COMPRESS_LEVEL = 1

#: A worker's shared mathtext parser keeps at most this many parsed texts.
_MATHTEXT_CACHE = 2048

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
        **savefig: ``savefig``'s arguments (``dpi``, ``format``, ``bbox_inches``, ...); a PNG
            file is compressed at :data:`PNG_COMPRESS_LEVEL` unless ``pil_kwargs`` says otherwise.
    """
    suffix = Path(target).suffix if isinstance(target, (str, os.PathLike)) else ""
    if str(savefig.get("format") or suffix.lstrip(".")).lower() == "png":
        savefig["pil_kwargs"] = {"compress_level": PNG_COMPRESS_LEVEL,
                                 **(savefig.get("pil_kwargs") or {})}
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
    share_mathtext()


def share_mathtext() -> None:
    """Make every Agg renderer of this process parse mathtext with one parser, its parses kept.

    Matplotlib's parser keeps its last 50 parses, but per parser, and each renderer
    (each ``savefig``) has its own: the same tick labels are parsed again for each
    figure. Parses are kept by what Matplotlib's own cache keys them by (the text,
    the DPI, the font, the antialiasing), so the figures drawn are the same, byte
    for byte. Called in the pool's workers (they
    write nothing else); calling it again does nothing.
    """
    from matplotlib.backends import backend_agg

    renderer = backend_agg.RendererAgg
    if isinstance(getattr(renderer, "_shared_mathtext", None), _SharedMathText):
        return
    shared = _SharedMathText()
    init = renderer.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.mathtext_parser = shared

    renderer.__init__ = __init__
    renderer._shared_mathtext = shared


class _SharedMathText(MathTextParser):
    """Matplotlib's parser of Agg's renderers (``"path"`` output), its parses kept by text,
    DPI, font and antialiasing (at most :data:`_MATHTEXT_CACHE`)."""

    def __init__(self) -> None:
        super().__init__("path")
        self._parsed: dict[tuple[Any, ...], Any] = {}

    def parse(self, s: str, dpi: float = 72, prop: Any = None, *,
              antialiased: bool | None = None) -> Any:
        if antialiased is None:
            antialiased = matplotlib.rcParams["text.antialiased"]
        key = (s, dpi, prop.copy() if prop is not None else None, antialiased)
        parsed = self._parsed.get(key)
        if parsed is None:
            if len(self._parsed) >= _MATHTEXT_CACHE:
                self._parsed.clear()
            parsed = self._parsed[key] = super().parse(s, dpi, prop, antialiased=antialiased)
        return parsed


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
