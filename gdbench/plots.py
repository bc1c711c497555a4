"""The lectures' pictures: error surfaces with optimizer paths, loss curves and
effective learning rates.

Every function draws one figure on its own :class:`matplotlib.figure.Figure`
(the Agg canvas; pyplot's global state is never touched, so plots can be drawn
from worker threads), writes it as a PNG and returns the file's path, ready to
be logged as an artifact by a tracker.

One optimizer keeps one colour in every figure: :func:`color_for` maps a
registered optimizer name (or a label that starts with one, ``"adam η=0.1"``)
to a fixed colour, and any other label to a colour derived from its text.

    >>> import gdbench.optimizers
    >>> from gdbench import plots, tasks
    >>> task = tasks.get("sigmoid_neuron")
    >>> result = task.fit(gdbench.optimizers.get("gd", learning_rate=1.0), epochs=300)
    >>> plots.plot_trajectories(task, {"gd": result.trajectory}, "gd.png", kind="both")
    PosixPath('gd.png')
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = [
    "DPI",
    "STYLE",
    "TRAJECTORY_KINDS",
    "color_for",
    "plot_effective_learning_rates",
    "plot_loss_curves",
    "plot_per_step",
    "plot_trajectories",
    "plot_trajectory_pair",
    "png_path",
    "save_figure",
    "shades_for",
    "surface_window",
]

#: The accepted values of ``plot_trajectories(kind=...)``.
TRAJECTORY_KINDS = ("contour", "surface", "both")

DPI = 120

STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": False,
}

#: A fixed colour per registered optimizer, in the lectures' order.
_OPTIMIZER_COLORS = {
    "gd": "#1f77b4",
    "momentum": "#ff7f0e",
    "nesterov": "#2ca02c",
    "adagrad": "#d62728",
    "rmsprop": "#9467bd",
    "adadelta": "#8c564b",
    "adam": "#e377c2",
    "adamax": "#17becf",
    "nadam": "#bcbd22",
    "amsgrad": "#393b79",
    "adamw": "#e7969c",
    "maxprop": "#637939",
    "rprop": "#7f7f7f",
}

# Colours for labels that name no registered optimizer: distinct from the
# fixed ones and from each other.
_EXTRA_COLORS = (
    "#843c39", "#3182bd", "#31a354", "#756bb1", "#e6550d",
    "#636363", "#a55194", "#8ca252", "#bd9e39", "#6baed6",
)

_SURFACE_CMAP = "YlGnBu_r"
_GRID_RESOLUTION = 121
# Contour levels go log-spaced when the surface's range dwarfs the height above
# the minimum of its lowest quarter (Rosenbrock's valley, Beale's corners):
# linear levels would paint the whole basin one colour.
_LOG_LEVELS_RATIO = 30.0
_CONTOUR_LEVELS = 24
_MAX_LINE_MARKERS = 60
_MAX_PARAMETER_PANELS = 16


class SurfaceTask(Protocol):
    """What :func:`plot_trajectories` needs of a task: a toy task's interface."""

    parameter_names: tuple[str, ...]
    surface_bounds: tuple[tuple[float, float], tuple[float, float]] | None

    def loss(self, params: Any, batch: Any = None) -> Any: ...


def color_for(label: str) -> str:
    """The colour of ``label`` in every gdbench figure.

    A label whose first word is a registered optimizer name (``"adam"``,
    ``"Adam (η=0.01)"``) gets that optimizer's fixed colour; any other label a
    colour chosen from its text, the same in every run.

    Args:
        label: an optimizer name or a run's label.
    """
    if not isinstance(label, str):
        raise TypeError(f"label: expected a string, got {label!r}")
    first_word = re.split(r"[^0-9a-z_]+", label.strip().lower(), maxsplit=1)[0]
    if first_word in _OPTIMIZER_COLORS:
        return _OPTIMIZER_COLORS[first_word]
    return _EXTRA_COLORS[zlib.crc32(label.encode("utf-8")) % len(_EXTRA_COLORS)]


def shades_for(label: str, count: int) -> list[str]:
    """``count`` shades of ``label``'s colour, from its own to paler and darker ones.

    For several runs of one optimizer in one figure (its best trials, best
    first): they keep the optimizer's hue and stay told apart.

    Args:
        label: an optimizer name or a run's label (:func:`color_for`).
        count: the shades wanted, ≥ 1.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count: expected an integer ≥ 1, got {count!r}")
    base = np.array(mcolors.to_rgb(color_for(label)))
    shades = [base]
    for index in range(1, count):
        # Alternately paler and darker, each step further from the base colour.
        amount = 0.55 * math.ceil(index / 2) / math.ceil((count - 1) / 2)
        toward = np.ones(3) if index % 2 else np.zeros(3)
        shades.append(base + (toward - base) * amount)
    return [mcolors.to_hex(shade) for shade in shades]


def plot_trajectories(
    task: SurfaceTask,
    trajectories: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    kind: str = "contour",
    title: str | None = None,
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
    resolution: int = _GRID_RESOLUTION,
    view: tuple[float, float] = (30.0, -60.0),
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Draw optimizer paths on a 2-parameter task's error surface.

    The surface is evaluated once, as ``task.loss`` on a ``[G, G, 2]`` grid
    spanning ``bounds``, else :func:`surface_window`: ``task.surface_bounds``,
    widened where a path leaves them, or the trajectories' extent with a margin. ``"contour"`` draws
    filled contours (log-spaced levels where the range is large) with a colour
    bar; ``"surface"`` the 3-D surface; ``"both"`` the two side by side. Each
    path is a line from the start (a white circle) to a star (the end); the
    legend, set below the plot so that it covers no path, gives each label's
    final loss. Paths drawn later are thinner, so that a shared stretch shows
    every colour.

    Args:
        task: a toy task with exactly two parameters (``parameter_names``,
            ``loss``, ``surface_bounds``).
        trajectories: label → parameters after every step, ``[steps + 1, 2]``
            (``FitResult.trajectory``).
        path: the PNG file to write; missing folders are created.
        kind: one of ``"contour"``, ``"surface"``, ``"both"``.
        title: the figure's title; the task's name when omitted.
        bounds: ``((x_min, x_max), (y_min, y_max))``, the window drawn
            (a zoom into the task's own ``surface_bounds``).
        resolution: G, grid points per axis (≥ 10).
        view: the 3-D panel's (elevation, azimuth) in degrees.
        colors: label → colour, for labels that should not get
            :func:`color_for`'s (several runs of one optimizer).

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: a task that does not have two parameters, an unknown
            ``kind``, a trajectory of the wrong shape, or no trajectory.
    """
    target = png_path(path)
    if kind not in TRAJECTORY_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(TRAJECTORY_KINDS)}, got {kind!r}")
    names = tuple(getattr(task, "parameter_names", ()))
    if len(names) != 2:
        raise ValueError(
            f"task: plot_trajectories draws 2-parameter toy tasks; {_task_name(task)} "
            f"has {len(names)} parameters ({', '.join(names) or 'none'})"
        )
    if not isinstance(resolution, int) or resolution < 10:
        raise ValueError(f"resolution: expected an integer ≥ 10, got {resolution!r}")
    paths = _validated_trajectories(trajectories)
    palette = _palette(paths, colors)
    bounds = _validated_bounds(bounds) if bounds is not None else surface_window(task, paths)

    xs = np.linspace(*bounds[0], resolution)
    ys = np.linspace(*bounds[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    surface = _loss_on(task, np.stack([grid_x, grid_y], axis=-1))
    path_losses = {label: _loss_on(task, points) for label, points in paths.items()}
    levels, norm = _contour_levels(surface)

    with matplotlib.rc_context(STYLE):
        width = 12.8 if kind == "both" else 6.8
        figure = Figure(figsize=(width, 5.6), layout="constrained")
        panels = ("contour", "surface") if kind == "both" else (kind,)
        for index, panel in enumerate(panels, start=1):
            if panel == "contour":
                axes = figure.add_subplot(1, len(panels), index)
                _draw_contour(figure, axes, grid_x, grid_y, surface, levels, norm, paths,
                              palette)
            else:
                axes = figure.add_subplot(1, len(panels), index, projection="3d",
                                          computed_zorder=False)
                _draw_surface(axes, grid_x, grid_y, surface, norm, paths, path_losses, bounds,
                              palette)
                axes.view_init(elev=view[0], azim=view[1])
            axes.set_xlabel(names[0])
            axes.set_ylabel(names[1])
        # Every path starts from the task's initial parameters: one entry says so.
        start = Line2D([], [], color="white", lw=0, marker="o", ms=7, markeredgecolor="black",
                       markeredgewidth=0.9, label="start")
        handles = [start] + [
            _path_legend_handle(label, losses[-1], palette[label])
            for label, losses in path_losses.items()
        ]
        figure.legend(
            handles=handles, loc="outside lower center",
            ncols=_legend_columns([handle.get_label() for handle in handles], width),
            frameon=False,
        )
        figure.suptitle(title if title is not None else _task_name(task))
        return save_figure(figure, target)


def plot_trajectory_pair(
    task: SurfaceTask,
    trajectories: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> Path:
    """Contours and 3-D surface side by side: ``plot_trajectories(kind="both")``.

    Args:
        task: a toy task with exactly two parameters.
        trajectories: label → parameters after every step, ``[steps + 1, 2]``.
        path: the PNG file to write.
        title: the figure's title; the task's name when omitted.
        bounds: the window drawn; the task's ``surface_bounds`` when omitted.
    """
    return plot_trajectories(task, trajectories, path, kind="both", title=title, bounds=bounds)


def plot_loss_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | os.PathLike[str],
    *,
    metric: str = "loss",
    log_scale: bool = True,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Plot one metric per epoch for several runs, validation dashed.

    Args:
        histories: label → per-epoch history (``FitResult.history``), which
            holds ``metric`` and, where there is one, ``"val_" + metric``.
        path: the PNG file to write; missing folders are created.
        metric: the history key to plot (``"loss"``, ``"accuracy"``, ...).
        log_scale: a logarithmic y axis, used only when every value is > 0.
        title: the figure's title; ``"<metric> per epoch"`` when omitted.
        colors: label → colour, for labels that should not get
            :func:`color_for`'s (several runs of one optimizer).

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: no history, or a history without ``metric``.
    """
    target = png_path(path)
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories: expected a non-empty mapping label → history")
    curves: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for label, history in histories.items():
        if metric not in history:
            raise ValueError(
                f"metric: {metric!r} is not in the history of {label!r}; "
                f"it has {', '.join(sorted(history)) or 'no keys'}"
            )
        train = np.asarray(history[metric], dtype=float)
        validation_key = f"val_{metric}"
        validation = (
            np.asarray(history[validation_key], dtype=float)
            if validation_key in history and len(history[validation_key]) else None
        )
        curves[label] = (train, validation)
    palette = _palette(curves, colors)

    values = np.concatenate([
        np.concatenate([train, validation if validation is not None else []])
        for train, validation in curves.values()
    ])
    finite = values[np.isfinite(values)]
    with matplotlib.rc_context(STYLE):
        # Fixed margins rather than a layout engine: the runner draws this
        # figure during a study, and a layout pass doubles its cost.
        figure = Figure(figsize=(7.2, 4.8))
        figure.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.92)
        axes = figure.add_subplot()
        for label, (train, validation) in curves.items():
            color = palette[label]
            axes.plot(np.arange(1, len(train) + 1), train, color=color, lw=1.8, label=label)
            if validation is not None:
                axes.plot(np.arange(1, len(validation) + 1), validation, color=color, lw=1.5,
                          ls="--", label=f"{label} (validation)")
        if log_scale and finite.size and np.all(finite > 0):
            axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(loc="best")
        axes.set_title(title if title is not None else f"{metric} per epoch")
        return save_figure(figure, target)


def plot_effective_learning_rates(
    traces: Mapping[str, np.ndarray],
    parameter_names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Plot each parameter's effective learning rate over the steps.

    One panel per parameter (``w`` and ``b`` for the sigmoid neuron), one line
    per optimizer, on a log axis where every value is > 0: the lectures'
    picture of Adagrad's decaying and RMSProp's steadier step sizes.

    Args:
        traces: label → ``[steps, P]`` effective learning rates, as returned
            by :func:`gdbench.tasks.trace.effective_learning_rate_trace`.
        parameter_names: the P parameters' names, one panel each (at most 16).
        path: the PNG file to write; missing folders are created.
        title: the figure's title; none when omitted.
        colors: label → colour, for labels that should not get
            :func:`color_for`'s (several runs of one optimizer).

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: no trace, a trace that is not ``[steps, P]``, or more
            than 16 parameters.
    """
    target = png_path(path)
    names = tuple(parameter_names)
    if not names:
        raise ValueError("parameter_names: expected at least one name")
    if len(names) > _MAX_PARAMETER_PANELS:
        raise ValueError(
            f"parameter_names: one panel per parameter, at most {_MAX_PARAMETER_PANELS}; "
            f"got {len(names)}"
        )
    if not isinstance(traces, Mapping) or not traces:
        raise ValueError("traces: expected a non-empty mapping label → [steps, P] array")
    arrays = {}
    for label, trace in traces.items():
        array = np.asarray(trace, dtype=float)
        if array.ndim != 2 or array.shape[1] != len(names) or array.shape[0] == 0:
            raise ValueError(
                f"traces[{label!r}]: expected shape [steps, {len(names)}], got {array.shape}"
            )
        arrays[label] = array
    palette = _palette(arrays, colors)

    columns = min(len(names), 3)
    rows = math.ceil(len(names) / columns)
    with matplotlib.rc_context(STYLE):
        width = 4.4 * columns
        figure = Figure(figsize=(width, 3.6 * rows + 0.6), layout="constrained")
        panels = figure.subplots(rows, columns, squeeze=False, sharex=True)
        for index, name in enumerate(names):
            axes = panels[index // columns][index % columns]
            column = [array[:, index] for array in arrays.values()]
            for label, values in zip(arrays, column):
                axes.plot(np.arange(1, len(values) + 1), values, color=palette[label],
                          lw=1.8, label=label)
            stacked = np.concatenate(column)
            finite = stacked[np.isfinite(stacked)]
            if finite.size and np.all(finite > 0):
                axes.set_yscale("log")
            axes.set_title(f"parameter {name}")
            axes.set_xlabel("step")
            axes.set_ylabel("effective learning rate")
            axes.grid(True, which="major", alpha=0.3)
        for index in range(len(names), rows * columns):
            panels[index // columns][index % columns].set_visible(False)
        handles, labels = panels[0][0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center",
                      ncols=_legend_columns(labels, width), frameon=False)
        if title is not None:
            figure.suptitle(title)
        return save_figure(figure, target)


def plot_per_step(
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    ylabel: str,
    title: str,
    log_scale: bool = False,
    xlabel: str = "step",
    steps_per_unit: Mapping[str, int] | None = None,
) -> Path:
    """Plot one quantity per optimizer step for several runs.

    The pictures of the lectures that are not losses or paths: the size of
    each step (Adam with and without bias correction), the learning rate a
    schedule sets at each step, the loss on all data after every stochastic
    step.

    Args:
        series: label → one value per step, step 1 first.
        path: the PNG file to write; missing folders are created.
        ylabel: what the values are.
        title: the figure's title.
        log_scale: a logarithmic y axis, used only when every value is > 0.
        xlabel: what one x unit is.
        steps_per_unit: label → steps in one x unit (steps per epoch, to
            draw runs of different batch sizes on one epoch axis); 1 for a
            label left out.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: no series, one that is not a non-empty 1-D sequence, or
            a step count that is not a positive integer.
    """
    target = png_path(path)
    if not isinstance(series, Mapping) or not series:
        raise ValueError("series: expected a non-empty mapping label → values")
    arrays = {}
    for label, values in series.items():
        array = np.asarray(values, dtype=float)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"series[{label!r}]: expected a non-empty 1-D sequence, "
                             f"got shape {array.shape}")
        arrays[label] = array
    units = dict(steps_per_unit or {})
    for label, count in units.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"steps_per_unit[{label!r}]: expected an integer ≥ 1, got {count!r}")
    stacked = np.concatenate(list(arrays.values()))
    finite = stacked[np.isfinite(stacked)]
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(7.2, 4.8))
        figure.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.92)
        axes = figure.add_subplot()
        for label, values in arrays.items():
            steps = np.arange(1, len(values) + 1) / units.get(label, 1)
            axes.plot(steps, values, color=color_for(label), lw=1.6, label=label,
                      marker="o" if len(values) <= 30 else None, ms=3)
        if log_scale and finite.size and np.all(finite > 0):
            axes.set_yscale("log")
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(loc="best")
        axes.set_title(title)
        return save_figure(figure, target)


def _validated_trajectories(trajectories: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(trajectories, Mapping) or not trajectories:
        raise ValueError(
            "trajectories: expected a non-empty mapping label → [steps + 1, 2] array"
        )
    paths = {}
    for label, trajectory in trajectories.items():
        points = np.asarray(trajectory, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
            raise ValueError(
                f"trajectories[{label!r}]: expected shape [steps + 1, 2], got {points.shape}"
            )
        paths[label] = points
    return paths


def _validated_bounds(bounds: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        (x_min, x_max), (y_min, y_max) = ((float(a), float(b)) for a, b in bounds)
    except (TypeError, ValueError):
        raise ValueError(
            f"bounds: expected ((x_min, x_max), (y_min, y_max)), got {bounds!r}"
        ) from None
    finite = np.all(np.isfinite([x_min, x_max, y_min, y_max]))
    if not (finite and x_min < x_max and y_min < y_max):
        raise ValueError(
            f"bounds: expected finite x_min < x_max and y_min < y_max, got {bounds!r}"
        )
    return (x_min, x_max), (y_min, y_max)


def surface_window(
    task: SurfaceTask, paths: Mapping[str, np.ndarray]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The window :func:`plot_trajectories` draws the surface over (without ``bounds``).

    ``task.surface_bounds`` where the task has them, widened where a path goes
    beyond them, so that every path shows whole (a momentum run overshooting
    the lectures' window still ends in the picture); the paths' extent with a
    margin for a task without them.
    """
    points = np.concatenate([np.asarray(path, dtype=float).reshape(-1, 2)
                             for path in paths.values()] or [np.empty((0, 2))])
    points = points[np.all(np.isfinite(points), axis=1)]
    bounds = getattr(task, "surface_bounds", None)
    if bounds is None:
        if not points.size:
            raise ValueError("trajectories: no finite point, and the task has no surface_bounds")
        low, high = points.min(axis=0), points.max(axis=0)
        margin = np.maximum(0.15 * (high - low), 0.5)
        low, high = low - margin, high + margin
    else:
        (x_min, x_max), (y_min, y_max) = bounds
        low, high = np.array([x_min, y_min], dtype=float), np.array([x_max, y_max], dtype=float)
        if points.size:
            margin = 0.05 * (high - low)
            low = np.where(points.min(axis=0) < low, points.min(axis=0) - margin, low)
            high = np.where(points.max(axis=0) > high, points.max(axis=0) + margin, high)
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


def _loss_on(task: SurfaceTask, points: np.ndarray) -> np.ndarray:
    # TensorFlow is imported here, not at the top: loss curves and learning
    # rates are drawn by processes (reports from tracked runs) that never train.
    import tensorflow as tf

    values = task.loss(tf.constant(points, dtype=tf.float64))
    values = np.asarray(values, dtype=np.float64)
    if values.shape != points.shape[:-1]:
        raise ValueError(
            f"task: loss on parameters of shape {points.shape} returned shape {values.shape}; "
            f"a toy task's loss must broadcast over leading dimensions"
        )
    return values


def _contour_levels(surface: np.ndarray) -> tuple[np.ndarray, mcolors.Normalize]:
    finite = surface[np.isfinite(surface)]
    if not finite.size:
        raise ValueError("task: the loss is not finite anywhere on the plotted region")
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        high = low + 1.0
    lower_quartile = float(np.percentile(finite, 25)) - low
    if lower_quartile > 0 and (high - low) / lower_quartile > _LOG_LEVELS_RATIO:
        # Log-spaced heights above the minimum, starting a little above it so
        # that the basin keeps a few levels of its own.
        floor = max(float(np.percentile(finite - low, 0.5)), (high - low) * 1e-6)
        heights = np.geomspace(floor, high - low, _CONTOUR_LEVELS)
        levels = low + np.concatenate([[0.0], heights])
        return levels, mcolors.BoundaryNorm(levels, ncolors=256)
    levels = np.linspace(low, high, _CONTOUR_LEVELS + 1)
    return levels, mcolors.Normalize(vmin=low, vmax=high)


def _draw_contour(
    figure: Figure, axes: Axes, grid_x: np.ndarray, grid_y: np.ndarray, surface: np.ndarray,
    levels: np.ndarray, norm: mcolors.Normalize, paths: Mapping[str, np.ndarray],
    palette: Mapping[str, str],
) -> None:
    masked = np.ma.masked_invalid(surface)
    filled = axes.contourf(grid_x, grid_y, masked, levels=levels, norm=norm,
                           cmap=_SURFACE_CMAP)
    axes.contour(grid_x, grid_y, masked, levels=levels, colors="white", linewidths=0.4,
                 alpha=0.5)
    colorbar = figure.colorbar(filled, ax=axes, shrink=0.9, pad=0.02)
    colorbar.set_label("loss")
    if isinstance(norm, mcolors.BoundaryNorm):
        colorbar.locator = ticker.FixedLocator(levels[::3])
    else:
        colorbar.locator = ticker.MaxNLocator(nbins=8)
    colorbar.formatter = ticker.FormatStrFormatter("%.3g")
    colorbar.update_ticks()
    for (label, points), width in zip(paths.items(), _line_widths(len(paths))):
        color = palette[label]
        axes.plot(points[:, 0], points[:, 1], color=color, lw=width, marker=".", ms=3.5,
                  markevery=_markevery(len(points)), zorder=3)
        _draw_endpoints(axes, points[0], points[-1], color)
    axes.set_xlim(grid_x[0, 0], grid_x[0, -1])
    axes.set_ylim(grid_y[0, 0], grid_y[-1, 0])


def _draw_surface(
    axes: Any, grid_x: np.ndarray, grid_y: np.ndarray, surface: np.ndarray,
    norm: mcolors.Normalize, paths: Mapping[str, np.ndarray],
    path_losses: Mapping[str, np.ndarray],
    bounds: tuple[tuple[float, float], tuple[float, float]],
    palette: Mapping[str, str],
) -> None:
    finite = surface[np.isfinite(surface)]
    top = float(finite.max())
    # The 3-D axes cannot clip, so the loss is capped at the plotted maximum
    # and parts of paths that leave the region are not drawn.
    shown = np.where(np.isfinite(surface), surface, top)
    axes.plot_surface(grid_x, grid_y, shown, cmap=_SURFACE_CMAP, norm=norm, rstride=2,
                      cstride=2, linewidth=0, antialiased=False, alpha=0.85, zorder=1)
    (x_min, x_max), (y_min, y_max) = bounds
    for (label, points), width in zip(paths.items(), _line_widths(len(paths))):
        color = palette[label]
        losses = np.asarray(path_losses[label], dtype=float).copy()
        inside = (
            (points[:, 0] >= x_min) & (points[:, 0] <= x_max)
            & (points[:, 1] >= y_min) & (points[:, 1] <= y_max) & np.isfinite(losses)
        )
        losses[~inside] = np.nan
        axes.plot(points[:, 0], points[:, 1], losses, color=color, lw=width, marker=".", ms=3.5,
                  markevery=_markevery(len(points)), zorder=3)
        if inside[0]:
            axes.scatter(*points[0], losses[0], color="white", s=40, marker="o",
                         edgecolors="black", linewidths=0.8, zorder=4, depthshade=False)
        if inside[-1]:
            axes.scatter(*points[-1], losses[-1], color=color, s=110, marker="*",
                         edgecolors="black", linewidths=0.6, zorder=4, depthshade=False)
    axes.set_xlim(x_min, x_max)
    axes.set_ylim(y_min, y_max)
    axes.set_zlim(float(finite.min()), top)
    axes.zaxis.set_major_locator(ticker.MaxNLocator(nbins=5))
    axes.zaxis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))
    axes.set_zlabel("loss")


def _draw_endpoints(axes: Axes, start: np.ndarray, end: np.ndarray, color: str) -> None:
    axes.scatter(*start, color="white", s=44, marker="o", edgecolors="black", linewidths=0.9,
                 zorder=4)
    axes.scatter(*end, color=color, s=130, marker="*", edgecolors="black", linewidths=0.7,
                 zorder=4)


def _path_legend_handle(label: str, final_loss: float, color: str) -> Line2D:
    return Line2D([], [], color=color, lw=2.2, marker="*", ms=10,
                  markeredgecolor="black", markeredgewidth=0.6,
                  label=f"{label} — final loss {final_loss:.3g}")


def _palette(labels: Mapping[str, Any], colors: Mapping[str, str] | None) -> dict[str, str]:
    """Each label's colour: ``colors``' where it has one, else :func:`color_for`'s."""
    chosen = dict(colors or {})
    for label, color in chosen.items():
        if not mcolors.is_color_like(color):
            raise ValueError(f"colors[{label!r}]: expected a matplotlib colour, got {color!r}")
    return {label: chosen.get(label) or color_for(label) for label in labels}


def _legend_columns(labels: Sequence[str], width: float) -> int:
    """Columns of a legend below a figure ``width`` inches wide: as many as its labels fit."""
    # About 13 characters an inch at the legend's 9 points, plus the line sample.
    longest = max((len(label) for label in labels), default=1) + 6
    return max(1, min(len(labels), int(width * 13 // longest)))


def _line_widths(count: int) -> list[float]:
    # Optimizers often share a stretch of path (sign-like first steps of the
    # adaptive methods): each path drawn is thinner than the one beneath it,
    # so every colour stays visible as a stripe.
    if count == 1:
        return [2.0]
    return [3.4 - 2.0 * index / (count - 1) for index in range(count)]


def _markevery(points: int) -> int:
    return max(1, points // _MAX_LINE_MARKERS)


def _task_name(task: Any) -> str:
    name = getattr(task, "name", None)
    return name if isinstance(name, str) else type(task).__name__


def png_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a PNG file's path (its suffix checked), for a figure to be written there."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"path: expected a .png file, got {str(path)!r}")
    return target


def save_figure(figure: Figure, target: Path) -> Path:
    """Write ``figure`` as a PNG at ``target`` (its folders created) and return the path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=DPI)
    return target
