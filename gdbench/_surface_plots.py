"""Error surfaces with optimizer paths: a 2-parameter task's loss as contours or in 3-D.

:func:`plot_trajectories` evaluates the surface once over :func:`surface_window`
(or given bounds) and draws every path on it, from its start to a star.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from gdbench._plot_style import (
    STYLE,
    SURFACE_CMAP,
    label_colors,
    legend_columns,
    png_path,
    save_figure,
    value_text,
)

__all__ = [
    "TRAJECTORY_KINDS",
    "SurfaceTask",
    "plot_trajectories",
    "plot_trajectory_pair",
    "surface_window",
]

#: The accepted values of ``plot_trajectories(kind=...)``.
TRAJECTORY_KINDS = ("contour", "surface", "both")

_GRID_RESOLUTION = 121
# Contour levels go log-spaced when the surface's range dwarfs the height above
# the minimum of its lowest quarter (Rosenbrock's valley, Beale's corners):
# linear levels would paint the whole basin one colour.
_LOG_LEVELS_RATIO = 30.0
_CONTOUR_LEVELS = 24
_MAX_LINE_MARKERS = 60


class SurfaceTask(Protocol):
    """What :func:`plot_trajectories` needs of a task: a toy task's interface."""

    parameter_names: tuple[str, ...]
    surface_bounds: tuple[tuple[float, float], tuple[float, float]] | None

    def loss(self, params: Any, batch: Any = None) -> Any: ...

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
    final_values: Mapping[str, float] | None = None,
    value_name: str = "final loss",
) -> Path:
    """Draw optimizer paths on a 2-parameter task's error surface.

    The surface is evaluated once, as ``task.loss`` on a ``[G, G, 2]`` grid
    spanning ``bounds``, else :func:`surface_window`: ``task.surface_bounds``,
    widened where a path leaves them, or the trajectories' extent with a margin. ``"contour"`` draws
    filled contours (log-spaced levels where the range is large) with a colour
    bar; ``"surface"`` the 3-D surface; ``"both"`` the two side by side. Each
    path is a line from the start (a white circle) to a star (the end); the
    legend, set below the plot so that it covers no path, gives each label's
    final loss (``final_values``' where given), printed as the leaderboard prints
    it (:func:`~gdbench.plots.value_text`). The surface's colour map is
    :data:`~gdbench.plots.SURFACE_CMAP`, on which every optimizer's colour shows. Paths drawn later are thinner, so that a shared stretch shows
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
        final_values: label → the value its legend entry prints (a trial's
            objective, as the leaderboard holds it); the loss at the path's end
            on the surface for a label left out.
        value_name: what the legend calls that value.

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
    palette = label_colors(paths, colors)
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
        shown = dict(final_values or {})
        handles = [start] + [
            _path_legend_handle(f"{label} — {value_name} "
                                f"{value_text(float(shown.get(label, losses[-1])))}",
                                palette[label])
            for label, losses in path_losses.items()
        ]
        figure.legend(
            handles=handles, loc="outside lower center",
            ncols=legend_columns([handle.get_label() for handle in handles], width),
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
    # rates are drawn by processes (reports from tracked runs) that never train
    # (keeps TensorFlow out of start-up).
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
                           cmap=SURFACE_CMAP)
    axes.contour(grid_x, grid_y, masked, levels=levels, colors="0.3", linewidths=0.4,
                 alpha=0.35)
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
    axes.plot_surface(grid_x, grid_y, shown, cmap=SURFACE_CMAP, norm=norm, rstride=2,
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


def _path_legend_handle(label: str, color: str) -> Line2D:
    return Line2D([], [], color=color, lw=2.2, marker="*", ms=10,
                  markeredgecolor="black", markeredgewidth=0.6, label=label)

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
