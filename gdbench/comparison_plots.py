"""The comparison's pictures: curves over seeds, budgets, profiles, sensitivity, baselines.

What :mod:`gdbench.study` draws when it compares optimizers (see
``docs/comparing.md``): each optimizer's mean curve over seeds with its
spread (:func:`plot_seed_bands`), the best found against the trials spent
(:func:`plot_best_so_far`), the objective against the learning rate
(:func:`plot_learning_rate_sensitivity`), performance profiles (:func:`plot_performance_profiles`)
and DeepOBS's published baselines behind a study's curves
(:func:`draw_baselines`). As in :mod:`gdbench.plots`, whose colours and style
they share, every figure is drawn on its own Agg
:class:`~matplotlib.figure.Figure` and written as a PNG.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gdbench._plot_style import (
    STYLE,
    color_for,
    legend_columns,
    png_path,
    save_figure,
    spans_decades,
    value_text,
)

__all__ = [
    "SEED_BANDS",
    "plot_learning_rate_sensitivity",
    "draw_baselines",
    "plot_best_so_far",
    "plot_performance_profiles",
    "plot_seed_bands",
]

#: The accepted values of ``plot_seed_bands(band=...)``.
SEED_BANDS = ("std", "range")


def plot_seed_bands(
    curves: Mapping[str, Sequence[Sequence[float]]],
    path: str | os.PathLike[str],
    *,
    metric: str = "loss",
    band: str = "std",
    log_scale: bool = True,
    title: str | None = None,
    baseline: Any = None,
    note: str | None = None,
    initial: Mapping[str, Sequence[float]] | None = None,
) -> Path:
    """Plot each label's mean curve over seeds with its spread as a band.

    A curve shorter than the others (a run that stopped when it diverged)
    counts at the epochs it has. Epoch k of a run is drawn at x = k: its
    curve's values from epoch 1, and, for a label in ``initial``, its value
    before training at epoch 0. A label of one epoch is a marker with its
    spread as an error bar.

    Args:
        curves: label → its runs' per-epoch values, one sequence per seed.
        path: the PNG file to write; missing folders are created.
        metric: what the curves hold, the y axis's label.
        band: ``"std"`` for mean ± one standard deviation (``ddof=1``), ``"range"``
            for the runs' minimum to maximum; the title says which.
        log_scale: a logarithmic y axis, used only when every value is > 0 and
            they span more than a decade.
        title: the figure's title; by default it names ``metric`` and the band.
        baseline: a DeepOBS problem (or a loaded :class:`gdbench.baselines.Baseline`)
            whose published curves of ``metric`` are drawn behind (:func:`draw_baselines`);
            whether they may be is :func:`gdbench.baselines.mismatch`'s to say.
        note: one line of small print under the axes (why no baseline is drawn).
        initial: label → each run's value before training (epoch 0), in the order
            of its runs (NaN for a run without one); a label left out starts at epoch 1.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: no curves, a label without runs, an unknown ``band``, or
            ``initial`` naming a label not in ``curves`` or not one value per run.
    """
    target = png_path(path)
    if band not in SEED_BANDS:
        raise ValueError(f"band: expected one of {', '.join(SEED_BANDS)}, got {band!r}")
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves: expected a non-empty mapping label → runs")
    initial = dict(initial or {})
    unknown = [label for label in initial if label not in curves]
    if unknown:
        raise ValueError(f"initial: {', '.join(map(repr, unknown))} not among the curves' labels")
    stacked: dict[str, np.ndarray] = {}
    first: dict[str, int] = {}
    for label, runs in curves.items():
        rows = [np.asarray(run, dtype=float) for run in runs]
        if not rows or not any(row.size for row in rows):
            raise ValueError(f"curves[{label!r}]: expected one or more non-empty runs")
        if label in initial:
            before = np.asarray(initial[label], dtype=float)
            if before.shape != (len(rows),):
                raise ValueError(f"initial[{label!r}]: expected one value per run "
                                 f"({len(rows)}), got shape {before.shape}")
            rows = [np.concatenate([[value], row]) for value, row in zip(before, rows)]
        first[label] = 0 if label in initial else 1
        table = np.full((len(rows), max(row.size for row in rows)), np.nan)
        for index, row in enumerate(rows):
            table[index, :row.size] = np.where(np.isfinite(row), row, np.nan)
        stacked[label] = table
    spread = "mean ± 1 std (ddof=1)" if band == "std" else "mean, band min–max"
    with matplotlib.rc_context(STYLE), warnings.catch_warnings():
        # An epoch that only one run reached has no deviation, none a mean: NaN, not a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        figure = Figure(figsize=(7.2, 4.8))
        figure.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.92)
        axes = figure.add_subplot()
        lows = []
        for label, table in stacked.items():
            color = color_for(label)
            epochs = np.arange(first[label], first[label] + table.shape[1])
            mean = np.nanmean(table, axis=0)
            if band == "std":
                deviation = np.nan_to_num(np.nanstd(table, axis=0, ddof=1))
                low, high = mean - deviation, mean + deviation
            else:
                low, high = np.nanmin(table, axis=0), np.nanmax(table, axis=0)
            lows.append(low)
            single = table.shape[1] == 1
            axes.plot(epochs, mean, color=color, lw=1.8, marker="o" if single else None,
                      label=f"{label} ({table.shape[0]} seeds)")
            if single:
                # One epoch: a band of no width would not show; its spread is an error bar.
                axes.errorbar(epochs, mean, yerr=[mean - low, high - mean], fmt="none",
                              ecolor=color, elinewidth=1.5, capsize=4)
            else:
                axes.fill_between(epochs, low, high, color=color, alpha=0.2, lw=0)
        if baseline is not None:
            last = max(first[label] + table.shape[1] - 1 for label, table in stacked.items())
            draw_baselines(axes, baseline, metric, epochs=last)
        values = np.concatenate([t.ravel() for t in stacked.values()] + lows)
        finite = values[np.isfinite(values)]
        # A log axis only where the values span a decade: over less it shows no ticks.
        if log_scale and finite.size and np.all(finite > 0) and finite.max() > 10 * finite.min():
            axes.set_yscale("log")
        axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(loc="best", title=spread)
        axes.set_title(title if title is not None else f"{metric} per epoch over seeds: {spread}")
        if note:
            figure.subplots_adjust(bottom=0.17)
            figure.text(0.01, 0.01, note, fontsize=7, color="0.35", ha="left", va="bottom",
                        wrap=True)
        return save_figure(figure, target)



def plot_performance_profiles(
    taus: Sequence[float],
    profiles: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    tau_max: float,
    scores: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """Plot performance profiles ρ_s(τ) as steps on a logarithmic τ axis from 1 to ``tau_max``.

    Args:
        taus: the increasing τ ≥ 1 at which the profiles are given.
        profiles: solver label → ρ(τ) at ``taus``, each in [0, 1].
        path: the PNG file to write; missing folders are created.
        tau_max: the right end of the τ axis.
        scores: solver label → area score, shown in the legend.
        title: the figure's title; ``"performance profiles"`` when omitted.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: no profile, τ not increasing from ≥ 1, or a profile of another length.
    """
    target = png_path(path)
    grid = np.asarray(taus, dtype=float)
    if not isinstance(profiles, Mapping) or not profiles:
        raise ValueError("profiles: expected a non-empty mapping label → ρ(τ)")
    if grid.ndim != 1 or grid.size == 0 or grid[0] < 1 or np.any(np.diff(grid) <= 0):
        raise ValueError("taus: expected increasing values ≥ 1")
    for label, values in profiles.items():
        if len(values) != grid.size:
            raise ValueError(f"profiles: {label!r} has {len(values)} values for {grid.size} τ")
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(7.2, 4.8))
        figure.subplots_adjust(left=0.1, right=0.97, bottom=0.11, top=0.92)
        axes = figure.add_subplot()
        palette = {label: color_for(label) for label in profiles}
        # Profiles often coincide over a range of τ: the line styles keep each one in sight.
        styles = ("-", "--", "-.", ":")
        for index, (label, values) in enumerate(profiles.items()):
            name = label if scores is None else f"{label} (area {scores[label]:.3f})"
            axes.step(grid, np.asarray(values, dtype=float), where="post", lw=1.8,
                      ls=styles[index % len(styles)], color=palette[label], label=name)
        axes.set_xscale("log")
        axes.set_xlim(1.0, tau_max)
        axes.set_ylim(-0.02, 1.02)
        axes.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        axes.xaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
        axes.set_xlabel("τ (cost within τ × the best)")
        axes.set_ylabel("ρ(τ): fraction of tasks")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="lower right")
        axes.set_title(title if title is not None else "performance profiles")
        return save_figure(figure, target)


def draw_baselines(
    axes: Axes,
    problem: Any,
    metric: str,
    *,
    optimizers: Sequence[str] | None = None,
    epochs: int | None = None,
    directory: str | os.PathLike[str] | None = None,
    alpha: float = 0.18,
) -> list[str]:
    """Draw DeepOBS's baselines of ``problem`` behind a study's curves: mean ± std over seeds.

    Each optimizer's mean is a thin dotted line in its colour (:func:`color_for`),
    labelled with its η and the seeds it averages (a subset of DeepOBS's ten),
    its mean ± one standard deviation a pale band, both under the axes' other
    lines; epoch k of the baseline is drawn at x = k, as gdbench draws its k-th
    epoch (0 is DeepOBS's evaluation before training). Whether the study's runs
    may be compared at all is :func:`gdbench.baselines.mismatch`'s to say.

    Args:
        axes: the axes to draw on.
        problem: a DeepOBS problem or gdbench task name, or a loaded
            :class:`gdbench.baselines.Baseline`.
        metric: ``loss``, ``accuracy``, ``test_loss`` or ``test_accuracy``.
        optimizers: the gdbench optimizer names to draw (``gd``, ``momentum``,
            ``adam``); ``None`` draws all.
        epochs: the last epoch to draw; ``None`` draws all.
        directory: where the baseline files are (by default the shipped ones).
        alpha: the bands' opacity.

    Returns:
        The legend labels of the lines drawn.

    Raises:
        KeyError: no baseline for ``problem``.
        ValueError: a metric or optimizer the baseline does not hold.
    """
    from gdbench import baselines

    baseline = (problem if isinstance(problem, baselines.Baseline)
                else baselines.load(problem, directory))
    chosen = list(baseline.curves) if optimizers is None else list(optimizers)
    unknown = [name for name in chosen if name not in baseline.curves]
    if unknown:
        raise ValueError(f"optimizers: {', '.join(unknown)} not among {baseline.problem}'s "
                         f"baselines ({', '.join(baseline.curves)})")
    labels = []
    for name in chosen:
        curve = baseline.curves[name]
        if metric not in curve.mean:
            raise ValueError(f"metric: DeepOBS's {baseline.problem} baselines hold "
                             f"{', '.join(curve.mean)}, not {metric!r}")
        mean, std = curve.mean[metric], curve.std[metric]
        end = len(mean) if epochs is None else min(len(mean), epochs + 1)
        x = np.arange(end)
        color = color_for(name)
        axes.fill_between(x, mean[:end] - std[:end], mean[:end] + std[:end], color=color,
                          alpha=alpha, lw=0, zorder=0)
        label = (f"DeepOBS {name} (η={curve.hyperparameters['learning_rate']:.3g}, "
                 f"seed{'s' if len(curve.seeds) != 1 else ''} "
                 f"{' '.join(str(seed) for seed in curve.seeds)})")
        axes.plot(x, mean[:end], color=color, lw=1.0, ls=":", zorder=0.5, label=label)
        labels.append(label)
    return labels



def plot_best_so_far(
    curves: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    budgets: Sequence[int] = (),
    metric: str = "loss",
    reference: tuple[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """Plot the best objective found against the trials spent, one line per optimizer.

    The x axis (trials, from 1) is logarithmic, so that the first trial (the
    defaults of a budget-matched comparison) and the last budget read alike.

    Args:
        curves: label → the best value after 1, 2, … trials (NaN while none is known).
        path: the PNG file to write; missing folders are created.
        budgets: trial counts marked by dotted vertical lines.
        metric: the y axis' label.
        reference: (label, value) drawn as a dashed horizontal line (the best of
            all optimizers at their defaults).
        title: the figure's title; ``"best <metric> so far"`` when omitted.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: no curve, or an empty one.
    """
    target = png_path(path)
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves: expected a non-empty mapping label → best values")
    lines = {label: np.asarray(values, dtype=float) for label, values in curves.items()}
    for label, values in lines.items():
        if values.ndim != 1 or not values.size:
            raise ValueError(f"curves: {label!r} holds no values")
    finite = np.concatenate([values[np.isfinite(values)] for values in lines.values()])
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(7.2, 4.8))
        figure.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.92)
        axes = figure.add_subplot()
        for label, values in lines.items():
            trials = np.arange(1, len(values) + 1)
            axes.step(trials, values, where="post", color=color_for(label), lw=1.8, label=label)
            axes.plot(trials[:1], values[:1], "o", color=color_for(label), ms=5)
        if reference is not None:
            axes.axhline(reference[1], color="0.3", ls="--", lw=1.2, label=reference[0])
        for budget in budgets:
            axes.axvline(budget, color="0.6", ls=":", lw=1.0)
        axes.set_xscale("log")
        longest = max(len(values) for values in lines.values())
        axes.set_xticks(sorted({1, *budgets, longest}))
        axes.xaxis.set_major_formatter(ticker.ScalarFormatter())
        axes.xaxis.set_minor_formatter(ticker.NullFormatter())
        if finite.size and np.all(finite > 0) and finite.max() / finite.min() > 10:
            axes.set_yscale("log")
        axes.set_xlabel("trials (the first at the defaults)")
        axes.set_ylabel(f"best {metric} so far")
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(loc="best")
        axes.set_title(title if title is not None else f"best {metric} so far")
        return save_figure(figure, target)


def plot_learning_rate_sensitivity(
    points: Mapping[str, Sequence[tuple[float, float]]],
    path: str | os.PathLike[str],
    *,
    metric: str = "loss",
    maximize: bool = False,
    failed: Sequence[float] = (),
    value_format: Callable[[Any], str] = value_text,
    title: str | None = None,
) -> Path:
    """DeepOBS's learning-rate sensitivity: each run's objective against its η, per optimizer.

    One colour per label (:func:`color_for`), each run a dot, the runs joined
    in the order of η by a thin line; the label's best run is a large star,
    and its legend entry prints that value and η. η is on a logarithmic axis;
    the objective too where its values span decades (:func:`spans_decades`).

    Args:
        points: label → (η, objective) of each run.
        path: the PNG file to write; missing folders are created.
        metric: the objective's name, the y axis's label.
        maximize: the best run is the largest (accuracy), else the smallest.
        failed: the η of runs that gave no value (diverged, failed): ticks along the top.
        value_format: how the legend prints a value (the leaderboard's format).
        title: the figure's title; ``"<metric> against η"`` when omitted.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: no label, a label without points, or an η that is not > 0.
    """
    target = png_path(path)
    if not isinstance(points, Mapping) or not points:
        raise ValueError("points: expected a non-empty mapping label → (η, value) pairs")
    arrays: dict[str, np.ndarray] = {}
    for label, pairs in points.items():
        array = np.asarray(pairs, dtype=float).reshape(-1, 2) if len(pairs) else np.empty((0, 2))
        if not array.size:
            raise ValueError(f"points[{label!r}]: expected one or more (η, value) pairs")
        if not np.all(array[:, 0] > 0):
            raise ValueError(f"points[{label!r}]: η must be > 0")
        arrays[label] = array[np.argsort(array[:, 0], kind="stable")]
    with matplotlib.rc_context(STYLE):
        width = 7.6
        figure = Figure(figsize=(width, 5.4), layout="constrained")
        axes = figure.add_subplot()
        for label, array in arrays.items():
            color = color_for(label)
            finite = array[np.isfinite(array[:, 1])]
            axes.plot(finite[:, 0], finite[:, 1], color=color, lw=0.8, alpha=0.5)
            axes.scatter(finite[:, 0], finite[:, 1], color=color, s=18, alpha=0.8, zorder=3)
            if not finite.size:
                continue
            best = finite[np.argmax(finite[:, 1]) if maximize else np.argmin(finite[:, 1])]
            axes.scatter(best[0], best[1], color=color, s=220, marker="*", edgecolors="black",
                         linewidths=0.8, zorder=4,
                         label=(f"{label}: best {value_format(float(best[1]))} "
                                f"at η={value_format(float(best[0]))} ({len(array)} runs)"))
        if len(failed):
            axes.plot(np.asarray(failed, dtype=float), np.ones(len(failed)), "|", color="0.25",
                      ms=10, transform=axes.get_xaxis_transform(), clip_on=False,
                      label=f"failed or diverged ({len(failed)} runs, at their η)")
        axes.set_xscale("log")
        if spans_decades(np.concatenate([array[:, 1] for array in arrays.values()])):
            axes.set_yscale("log")
        axes.set_xlabel("learning rate η")
        axes.set_ylabel(metric)
        axes.grid(True, which="major", alpha=0.3)
        handles, labels = axes.get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", frameon=False,
                      ncols=legend_columns(labels, width))
        axes.set_title(title if title is not None else f"{metric} against η")
        return save_figure(figure, target)
