"""Optuna's plots of a study, drawn so that they read: per optimizer, on log axes where due.

- ``optimization_history.png`` and ``intermediate_values.png`` (the
  :data:`MAX_CURVES` best trials' per-epoch objective in a larger study), their
  objective axis logarithmic where the values span decades
  (:func:`gdbench.plots.spans_decades`);
- ``param_importances.png``, over the whole study (the optimizer one parameter
  among the others);
- ``parallel_coordinate.png`` and ``contour.png`` (the two most important
  parameters), drawn per optimizer (× schedule) over that optimizer's own
  parameters where a study compares several: ``parallel_coordinate_<group>.png``,
  ``contour_<group>.png``, never pooled (Adam's ε against GD's η means nothing).
  Their colour is the objective's ``log10`` where the values span decades.

A plot Optuna cannot draw (fewer than two complete trials, a single parameter, ...)
is left out.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from gdbench._figure_pool import FigurePool, save
from gdbench.plots import color_for, spans_decades
from gdbench.study.report.by_optimizer import complete_by_group, objective_metric
from gdbench.study.trials.progress import ReportProgress

__all__ = ["MAX_CURVES", "MAX_LEGEND_ENTRIES", "slug", "write_optuna_plots"]

logger = logging.getLogger(__name__)

#: A plot legend of more entries than this is left out.
MAX_LEGEND_ENTRIES = 12

#: The intermediate-values plot of a larger study draws its best this many trials.
MAX_CURVES = 50


def slug(label: str) -> str:
    """A group's label as part of a file name: lower case, ``_`` for any other character."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "trials"


def write_optuna_plots(study: optuna.Study, out_dir: Path, complete: Sequence[FrozenTrial],
                       progress: ReportProgress, pool: FigurePool | None = None) -> list[Path]:
    """Draw Optuna's plots of ``study``'s ``complete`` trials into ``out_dir``, each counted by
    ``progress`` once written (by ``pool``'s workers where given); the files written."""
    pool = pool or FigurePool(workers=0)
    from optuna.visualization import matplotlib as optuna_plots

    values = [trial.value for trial in complete]
    logarithmic = spans_decades(values)
    searched = sorted({name for trial in complete for name in trial.params})
    importances: dict[str, float] = {}
    if len(complete) >= 2 and searched:
        importances = _quietly(lambda: optuna.importance.get_param_importances(study)) or {}
    plots: list[tuple[str, Callable[[], Any]]] = [
        ("optimization_history",
         lambda: _log_axis(optuna_plots.plot_optimization_history(study), logarithmic)),
        ("intermediate_values", lambda: _by_optimizer(
            _log_axis(_best_curves(study, complete), logarithmic), groups)),
    ]
    groups = complete_by_group(study)
    if importances:
        plots.append(("param_importances", lambda: optuna_plots.plot_param_importances(study)))
    if len(groups) > 1:
        for group, members in groups.items():
            plots += _per_view(_view(study, members), f"_{slug(group)}", group, objective_metric(study))
    else:
        plots += _per_view(_view(study, list(complete)), "", None, objective_metric(study))
    written = []
    for name, draw in plots:
        progress.doing(f"{name}.png")
        path = _save_axes(draw, out_dir / f"{name}.png", pool, progress.wrote)
        if path is not None:
            written.append(path)
    return written


def _view(study: optuna.Study, trials: Sequence[FrozenTrial]) -> optuna.Study:
    """An in-memory study of ``trials`` holding only the parameters that every one of them
    has and that vary among them (no "None" on an axis, no axis of one value)."""
    names = set.intersection(*(set(trial.params) for trial in trials)) if trials else set()
    varying = sorted(name for name in names
                     if len({repr(trial.params[name]) for trial in trials}) > 1)
    view = optuna.create_study(direction=study.direction, study_name=study.study_name)
    view.add_trials([optuna.trial.create_trial(
        params={name: trial.params[name] for name in varying},
        distributions={name: trial.distributions[name] for name in varying},
        value=trial.value) for trial in trials])
    return view


def _per_view(view: optuna.Study, suffix: str, group: str | None,
              metric: str) -> list[tuple[str, Callable[[], Any]]]:
    """The parallel-coordinate and contour plots of one view, where it can have them."""
    from optuna.visualization import matplotlib as optuna_plots

    trials = view.get_trials(deepcopy=False)
    names = sorted(trials[0].params) if trials else []
    if len(trials) < 2 or not names:
        return []
    values = [trial.value for trial in trials]
    target, target_name = None, metric
    if spans_decades(values):
        target, target_name = (lambda trial: math.log10(trial.value)), f"log10 {metric}"
    who = f"{group}: " if group else ""
    plots: list[tuple[str, Callable[[], Any]]] = [
        (f"parallel_coordinate{suffix}", lambda: _widened(_titled(
            optuna_plots.plot_parallel_coordinate(view, target=target, target_name=target_name),
            f"{who}{target_name} of {len(trials)} trials"), len(names) + 1))]
    if len(names) >= 2:
        # Importances (a random forest) only where there are more than two to choose from.
        importances = (_quietly(lambda: optuna.importance.get_param_importances(view)) or {}
                       if len(names) > 2 else {})
        top = [name for name in importances if name in names][:2] or names[:2]
        if len(top) == 2:
            plots.append((f"contour{suffix}", lambda: _titled(optuna_plots.plot_contour(
                view, params=top, target=target, target_name=target_name),
                f"{who}{target_name}, {top[0]} × {top[1]}")))
    return plots


def _widened(axes: Any, columns: int) -> Any:
    """A parallel-coordinate plot given room for each axis' tick labels (2 inches an axis)."""
    figure = _all_axes(axes)[0].figure
    width, height = figure.get_size_inches()
    figure.set_size_inches(max(width, 2.0 * columns + 1.5), height)
    return axes


def _by_optimizer(axes: Any, groups: dict[str, list[FrozenTrial]]) -> Any:
    """Optuna's intermediate values, each trial's line in its optimizer's colour
    (:func:`gdbench.plots.color_for`), one legend entry per optimizer."""
    from matplotlib.lines import Line2D

    if len(groups) < 2:
        return axes
    group_of_trial = {f"Trial{trial.number}": group
                      for group, members in groups.items() for trial in members}
    for ax in _all_axes(axes):
        shown = {}
        for line in ax.get_lines():
            group = group_of_trial.get(str(line.get_label()))
            if group is not None:
                line.set_color(color_for(group))
                line.set_markerfacecolor(color_for(group))
                line.set_markeredgecolor(color_for(group))
                shown[group] = None
        ax.legend(handles=[Line2D([], [], color=color_for(group), lw=2, label=group)
                           for group in sorted(shown)], loc="best", fontsize=8)
    return axes


def _titled(axes: Any, title: str) -> Any:
    for ax in _all_axes(axes):
        ax.set_title(title)
    return axes


def _log_axis(axes: Any, logarithmic: bool) -> Any:
    """The objective's (y) axis logarithmic where the values span decades."""
    if logarithmic:
        for ax in _all_axes(axes):
            ax.set_yscale("log")
    return axes


def _all_axes(axes: Any) -> list[Any]:
    import numpy as np

    return list(np.ravel(axes)) if isinstance(axes, np.ndarray) else [axes]


def _best_curves(study: optuna.Study, complete: Sequence[FrozenTrial]) -> Any:
    """Optuna's intermediate-values plot of the :data:`MAX_CURVES` best complete trials.

    Every trial's curve is in TensorBoard; here a thousand curves would read
    as one blot and take matplotlib seconds to draw.
    """
    from optuna.visualization import matplotlib as optuna_plots

    if len(complete) <= MAX_CURVES:
        return optuna_plots.plot_intermediate_values(study)
    best = sorted(complete, key=lambda trial: trial.value,
                  reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)[:MAX_CURVES]
    view = optuna.create_study(direction=study.direction)
    view.add_trials(best)
    axes = optuna_plots.plot_intermediate_values(view)
    # The view numbers its trials 0, 1, …: each line is named by its own trial again.
    for line in axes.get_lines():
        label = str(line.get_label())
        if label.startswith("Trial") and label[5:].isdigit() and int(label[5:]) < len(best):
            line.set_label(f"Trial{best[int(label[5:])].number}")
    axes.set_title(f"Intermediate values: the {MAX_CURVES} best of {len(complete)} "
                   "complete trials")
    return axes


def _quietly(call: Callable[[], Any]) -> Any:
    """``call()`` with Optuna's warnings silenced; ``None`` where Optuna cannot compute it.

    Optuna's matplotlib plots switch the whole process to the ggplot style
    (``plt.style.use``); the settings are put back after the call, so that
    the figures drawn after it keep gdbench's own style.
    """
    import matplotlib

    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore")
        try:
            return call()
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            logger.info("skipped: %s", error)
            return None


def _save_axes(draw: Callable[[], Any], path: Path, pool: FigurePool,
               written: Callable[[], None]) -> Path | None:
    """Save the figure ``draw()`` returns axes of, by ``pool``, ``written()`` once it is;
    ``None`` when it drew nothing."""
    import matplotlib.pyplot as plt

    axes = _quietly(draw)
    if axes is None:
        return None
    all_axes = _all_axes(axes)
    figure = all_axes[0].figure
    try:
        if not any(ax.has_data() for ax in all_axes):
            return None
        for ax in all_axes:
            legend = ax.get_legend()
            # One entry per trial (intermediate values): beyond a few it reads as
            # nothing, and hundreds take matplotlib seconds to lay out.
            if legend is not None and len(legend.get_texts()) > MAX_LEGEND_ENTRIES:
                legend.remove()
        pool.write(path, lambda partial: save(figure, partial, quiet=True, dpi=110,
                                              bbox_inches="tight"), written)
        return path
    finally:
        plt.close(figure)
