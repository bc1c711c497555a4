"""Figures written by worker processes: the same files, errors and interruptions as written here;
the workers' shared mathtext parser and the PNG compression level."""

from __future__ import annotations

import io
import multiprocessing
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends import backend_agg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter

from gdbench import _figure_pool, plots
from gdbench._figure_pool import FigurePool, save


def draw_all(pool: FigurePool, folder: Path, counted: list[str]) -> list[Path]:
    """A loss-curve figure, a learning-rate one (log axes) and one saved with a tight box."""
    folder.mkdir()
    steps = np.arange(1, 301)
    curves = {"adam": {"loss": 1.0 / steps}, "gd": {"loss": 2.0 / np.sqrt(steps)}}
    rates = {"adam": np.stack([1e-3 / np.sqrt(steps), 1e-2 / steps], axis=1)}

    def tight(partial: Path) -> None:
        figure = Figure(figsize=(4, 3))
        figure.subplots().plot(steps, np.log(steps), label="log")
        save(figure, partial, quiet=True, dpi=110, bbox_inches="tight")

    files = {
        "loss.png": lambda partial: plots.plot_loss_curves(curves, partial, title="loss"),
        "rates.png": lambda partial: plots.plot_effective_learning_rates(rates, ["w", "b"],
                                                                         partial),
        "tight.png": tight,
    }
    for name, draw in files.items():
        pool.write(folder / name, draw, lambda name=name: counted.append(name))
    return [folder / name for name in files]


def test_workers_write_the_files_written_here_byte_for_byte(tmp_path: Path) -> None:
    counted: dict[int, list[str]] = {2: [], 0: []}
    written = {}
    for workers, names in counted.items():
        with FigurePool(workers) as pool:
            written[workers] = draw_all(pool, tmp_path / str(workers), names)
    for here, there in zip(written[0], written[2]):
        assert there.read_bytes() == here.read_bytes()
    assert sorted(counted[2]) == counted[0] == ["loss.png", "rates.png", "tight.png"]
    assert sorted(path.name for path in (tmp_path / "2").iterdir()) == counted[0]
    assert not multiprocessing.active_children()


def test_a_workers_error_is_raised_in_the_caller_and_leaves_no_file(tmp_path: Path) -> None:
    def broken(partial: Path) -> None:
        figure = Figure()
        figure.subplots().plot([1, 2], [3, 4])
        save(figure, partial, format="nonsense")

    with pytest.raises(ValueError, match="nonsense"), FigurePool(1) as pool:
        pool.write(tmp_path / "broken.png", broken)
    assert list(tmp_path.iterdir()) == []
    assert not multiprocessing.active_children()


def test_an_exception_in_the_caller_ends_the_workers(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), FigurePool(2):
        assert len(multiprocessing.active_children()) == 2
        raise KeyboardInterrupt
    assert not multiprocessing.active_children()


def test_a_figure_that_cannot_be_pickled_is_written_here(tmp_path: Path) -> None:
    def local_formatter(partial: Path) -> None:
        figure = Figure()
        axes = figure.subplots()
        axes.plot([1, 2], [3, 4])
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"<{value:g}>"))
        save(figure, partial, format="png")

    counted: list[str] = []
    with FigurePool(1) as pool:
        pool.write(tmp_path / "local.png", local_formatter, lambda: counted.append("local"))
        assert counted == ["local"]
    assert (tmp_path / "local.png").stat().st_size > 0


def test_a_workers_warnings_are_warned_in_the_caller(tmp_path: Path) -> None:
    def warned(partial: Path) -> None:
        figure = Figure()
        # A glyph missing from the font: Matplotlib warns as it draws the text.
        figure.subplots().set_title("\u4e2d")
        save(figure, partial, format="png")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with FigurePool(0) as pool:
            pool.write(tmp_path / "here.png", warned)
        here = [str(warning.message) for warning in caught]
        caught.clear()
        with FigurePool(1) as pool:
            pool.write(tmp_path / "there.png", warned)
        there = [str(warning.message) for warning in caught]
    assert any("missing from font" in message for message in here)
    assert there == here


def test_no_worker_on_a_machine_of_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_figure_pool.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(_figure_pool.os, "cpu_count", lambda: 1)
    assert _figure_pool.default_workers() == 0
    monkeypatch.setattr(_figure_pool.os, "sched_getaffinity", lambda pid: set(range(8)),
                        raising=False)
    monkeypatch.setattr(_figure_pool.os, "cpu_count", lambda: 8)
    assert _figure_pool.default_workers() == _figure_pool.MAX_WORKERS


def log_figure() -> Figure:
    """A figure whose log axis labels its ticks in mathtext (``$\\mathdefault{10^{-3}}$``)."""
    figure = Figure(figsize=(4, 3))
    axes = figure.subplots()
    axes.loglog([1e-3, 1.0, 1e3], [1e-4, 1e-1, 1e2])
    axes.set_title("$\\eta$ against steps")
    return figure


def png_bytes(figure: Figure, **savefig: object) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig)
    return buffer.getvalue()


def test_shared_mathtext_parses_once_for_every_renderer_and_draws_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = backend_agg.RendererAgg
    # Put back what share_mathtext changes, for the tests after this one.
    monkeypatch.setattr(renderer, "__init__", renderer.__init__)
    monkeypatch.setattr(renderer, "_shared_mathtext", None, raising=False)
    before = png_bytes(log_figure())
    assert renderer(10, 10, 72).mathtext_parser is not renderer(10, 10, 72).mathtext_parser
    _figure_pool.share_mathtext()
    first, second = renderer(10, 10, 72), renderer(20, 20, 110)
    assert first.mathtext_parser is second.mathtext_parser
    parsed = first.mathtext_parser.parse("$10^{-3}$", 110, FontProperties(size=9))
    assert second.mathtext_parser.parse("$10^{-3}$", 110, FontProperties(size=9)) is parsed
    assert second.mathtext_parser.parse("$10^{-3}$", 72, FontProperties(size=9)) is not parsed
    _figure_pool.share_mathtext()
    assert renderer(10, 10, 72).mathtext_parser is first.mathtext_parser
    assert png_bytes(log_figure()) == before


def test_save_writes_png_at_the_pools_compression_level(tmp_path: Path) -> None:
    figure = log_figure()
    save(figure, tmp_path / "fast.png")
    save(figure, tmp_path / "asked.png", pil_kwargs={"compress_level": 9})
    fast = (tmp_path / "fast.png").read_bytes()
    assert fast == png_bytes(figure, pil_kwargs={"compress_level": _figure_pool.PNG_COMPRESS_LEVEL})
    assert fast != png_bytes(figure)
    assert (tmp_path / "asked.png").read_bytes() == png_bytes(figure,
                                                              pil_kwargs={"compress_level": 9})
    buffer = io.BytesIO()
    save(figure, buffer, format="svg")
    assert buffer.getvalue().lstrip().startswith(b"<?xml")
