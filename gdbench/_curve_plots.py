"""Curves over epochs and steps: losses, effective learning rates, any per-step quantity.

One line per run, in its optimizer's colour (:func:`~gdbench.plots.color_for`);
validation curves dashed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gdbench._plot_style import (
    STYLE,
    color_for,
    label_colors,
    legend_columns,
    png_path,
    save_figure,
    title_place,
)

__all__ = ["plot_effective_learning_rates", "plot_loss_curves", "plot_per_step"]

_MAX_PARAMETER_PANELS = 16

# The learning-rate figure's margins, in inches (at STYLE's font sizes): a panel's
# y tick labels and label at its left, its title above it, its x tick labels and
# label below it; one legend row; the figure's title; the right edge; the room
# around the legend.
_AXIS_LEFT = 0.78
_PANEL_TITLE = 0.32
_AXIS_BELOW = 0.58
_LEGEND_ROW = 0.19
_FIGURE_TITLE = 0.24
_RIGHT = 0.12
_LEGEND_PAD = 0.14


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
    palette = label_colors(curves, colors)

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
        logarithmic = bool(log_scale and finite.size and np.all(finite > 0))
        if logarithmic:
            axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(loc="best")
        axes.set_title(title if title is not None else f"{metric} per epoch",
                       **title_place(logarithmic))
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
    palette = label_colors(arrays, colors)

    columns = min(len(names), 3)
    rows = math.ceil(len(names) / columns)
    legend_labels = list(arrays)
    with matplotlib.rc_context(STYLE):
        width = 4.4 * columns
        legend_rows = math.ceil(len(legend_labels) / legend_columns(legend_labels, width))
        height = 3.6 * rows + 0.6
        # Margins fixed in inches rather than a layout engine, whose passes over
        # every tick label cost about a third of this figure: room for the log
        # axis' labels at the left of each panel, its title above, the step
        # axis below, the legend's rows at the bottom and the title at the top.
        # Where a panel's labels are not only powers of ten (:func:`_decade_labels`),
        # constrained layout measures them instead.
        bottom = _AXIS_BELOW + _LEGEND_PAD + legend_rows * _LEGEND_ROW
        top = _PANEL_TITLE + (_FIGURE_TITLE if title is not None else 0.0)
        panel_height = (height - bottom - top - (rows - 1) * (_AXIS_BELOW + _PANEL_TITLE)) / rows
        panel_width = (width - _AXIS_LEFT - _RIGHT - (columns - 1) * _AXIS_LEFT) / columns
        figure = Figure(figsize=(width, height))
        figure.subplots_adjust(
            left=_AXIS_LEFT / width, right=1 - _RIGHT / width,
            bottom=bottom / height, top=1 - top / height,
            wspace=_AXIS_LEFT / panel_width, hspace=(_AXIS_BELOW + _PANEL_TITLE) / panel_height)
        panels = figure.subplots(rows, columns, squeeze=False, sharex=True)
        fixed = True
        for index, name in enumerate(names):
            axes = panels[index // columns][index % columns]
            column = [array[:, index] for array in arrays.values()]
            for label, values in zip(arrays, column):
                axes.plot(np.arange(1, len(values) + 1), values, color=palette[label],
                          lw=1.8, label=label)
            stacked = np.concatenate(column)
            finite = stacked[np.isfinite(stacked)]
            logarithmic = bool(finite.size and np.all(finite > 0))
            if logarithmic:
                axes.set_yscale("log")
            fixed = fixed and logarithmic and _decade_labels(axes)
            axes.set_title(f"parameter {name}", **title_place(logarithmic))
            axes.set_xlabel("step")
            axes.set_ylabel("effective learning rate")
            axes.grid(True, which="major", alpha=0.3)
        for index in range(len(names), rows * columns):
            panels[index // columns][index % columns].set_visible(False)
        handles, labels = panels[0][0].get_legend_handles_labels()
        if fixed:
            figure.legend(handles, labels, loc="lower center",
                          bbox_to_anchor=(0.5, _LEGEND_PAD / 2 / height),
                          ncols=legend_columns(labels, width), frameon=False)
        else:
            figure.set_layout_engine("constrained")
            figure.legend(handles, labels, loc="outside lower center",
                          ncols=legend_columns(labels, width), frameon=False)
        if title is not None:
            figure.suptitle(title, **({"y": 1 - 0.06 / height, "va": "top"} if fixed else {}))
        return save_figure(figure, target)


def _decade_labels(axes: Axes) -> bool:
    """Whether ``axes``' log y axis labels only powers of ten (``10^{-3}``): its view holds
    two of them or more, where Matplotlib's log formatter labels no minor tick."""
    low, high = axes.get_ylim()
    return bool(0 < low < high and math.floor(math.log10(high)) - math.ceil(math.log10(low)) >= 1)


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
        logarithmic = bool(log_scale and finite.size and np.all(finite > 0))
        if logarithmic:
            axes.set_yscale("log")
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(loc="best")
        axes.set_title(title, **title_place(logarithmic))
        return save_figure(figure, target)
