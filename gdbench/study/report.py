"""A study's report: the leaderboard (printed and CSV) and Optuna's own plots.

Everything here reads the Optuna study only, so ``gdbench report STUDY`` can
redraw it at any time from the storage, without the spec or the trackers.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["FINISHED_STATES", "format_leaderboard", "leaderboard", "write_report"]

logger = logging.getLogger(__name__)

#: Trial states that count toward a study's budget.
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

#: User attributes the runner sets on every trial.
HYPERPARAMETERS_ATTR = "hyperparameters"
FAIL_REASON_ATTR = "fail_reason"
PRUNE_REASON_ATTR = "prune_reason"
EPOCHS_RUN_ATTR = "epochs_run"

_FIRST_COLUMNS = ("rank", "trial", "state", "value", "optimizer", "schedule")
_LAST_COLUMNS = ("epochs_run", "duration_s", "reason")
_STATE_ORDER = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.FAIL: 2}


def trial_hyperparameters(trial: FrozenTrial) -> dict[str, Any]:
    """Every hyperparameter of a trial by its tracked name (Optuna's params when not recorded)."""
    recorded = trial.user_attrs.get(HYPERPARAMETERS_ATTR)
    return dict(recorded) if isinstance(recorded, dict) else dict(trial.params)


def trial_reason(trial: FrozenTrial) -> str:
    """Why a trial failed or was pruned; empty for a complete one."""
    reason = trial.user_attrs.get(FAIL_REASON_ATTR) or trial.user_attrs.get(PRUNE_REASON_ATTR)
    return str(reason or "")


def leaderboard(study: optuna.Study) -> list[dict[str, Any]]:
    """Every finished trial, best first: complete by value, then pruned, then failed.

    Each row holds ``rank`` (1 for the best complete trial; none for the
    others), ``trial``, ``state``, ``value``, ``optimizer``, ``schedule``,
    every hyperparameter by its tracked name, ``epochs_run``, ``duration_s``
    and ``reason`` (why it failed or was pruned).

    Args:
        study: the study.
    """
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    trials = study.get_trials(deepcopy=False, states=FINISHED_STATES)

    def order(trial: FrozenTrial) -> tuple[int, float, int]:
        if trial.state == TrialState.COMPLETE:
            return (0, sign * trial.value, trial.number)
        if trial.state == TrialState.PRUNED and trial.intermediate_values:
            last = trial.intermediate_values[max(trial.intermediate_values)]
            return (1, sign * last if math.isfinite(last) else math.inf, trial.number)
        return (_STATE_ORDER[trial.state], math.inf, trial.number)

    rows = []
    rank = 0
    for trial in sorted(trials, key=order):
        hyperparameters = trial_hyperparameters(trial)
        complete = trial.state == TrialState.COMPLETE
        rank += complete
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        row: dict[str, Any] = {
            "rank": rank if complete else None,
            "trial": trial.number,
            "state": trial.state.name,
            "value": trial.value if complete else None,
            "optimizer": hyperparameters.pop("optimizer", ""),
            "schedule": hyperparameters.pop("schedule", ""),
        }
        row.update(hyperparameters)
        row.update({
            "epochs_run": trial.user_attrs.get(EPOCHS_RUN_ATTR),
            "duration_s": round(duration, 3) if duration is not None else None,
            "reason": trial_reason(trial),
        })
        rows.append(row)
    return rows


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    middle = dict.fromkeys(key for row in rows for key in row
                           if key not in _FIRST_COLUMNS and key not in _LAST_COLUMNS)
    return [*_FIRST_COLUMNS, *middle, *_LAST_COLUMNS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_leaderboard(rows: Sequence[dict[str, Any]], *, limit: int = 10) -> str:
    """The first ``limit`` rows as a plain-text table.

    Columns: rank, trial, state, value; the optimizer and the schedule when
    they vary; every hyperparameter that varies, as ``name=value`` in one
    column; the epochs run when they vary; and the reason (cut to 60
    characters). The CSV of :func:`write_report` holds every column.

    Args:
        rows: :func:`leaderboard`'s rows.
        limit: rows shown.
    """
    if not rows:
        return "(no finished trial)"

    def varies(column: str) -> bool:
        return len({_cell(row.get(column)) for row in rows}) > 1

    shown = list(rows[:limit])
    columns = ["rank", "trial", "state", "value"]
    columns += [column for column in ("optimizer", "schedule") if varies(column)]
    searched = [column for column in _columns(rows)
                if column not in _FIRST_COLUMNS and column not in _LAST_COLUMNS and varies(column)]
    epochs = ["epochs"] if varies("epochs_run") else []
    table = [columns + ["hyperparameters"] + epochs + ["reason"]]
    for row in shown:
        values = " ".join(f"{column.removeprefix('schedule.')}={_cell(row[column])}"
                          for column in searched if row.get(column) is not None)
        line = [_cell(row.get(column)) for column in columns] + [values]
        if epochs:
            line.append(_cell(row.get("epochs_run")))
        table.append(line + [_cell(row.get("reason"))[:60]])
    widths = [max(len(line[index]) for line in table) for index in range(len(table[0]))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
             for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more in leaderboard.csv")
    return "\n".join(lines)


def write_leaderboard_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Every row of the leaderboard as CSV, one column per field."""
    columns = _columns(rows)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    return path


def write_report(study: optuna.Study, out_dir: str | Path) -> list[Path]:
    """Write the leaderboard and Optuna's plots into ``out_dir``.

    Files: ``leaderboard.csv``; ``optimization_history.png``,
    ``intermediate_values.png`` (per-epoch objective of every trial),
    ``param_importances.png``, ``parallel_coordinate.png`` and
    ``contour.png`` (the two most important parameters). A plot Optuna
    cannot draw for this study (fewer than two complete trials, a single
    parameter, ...) is left out.

    Args:
        study: the study.
        out_dir: the folder, created if missing.

    Returns:
        The files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = leaderboard(study)
    written = [write_leaderboard_csv(rows, out_dir / "leaderboard.csv")]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return written

    from optuna.visualization import matplotlib as optuna_plots

    searched = sorted({name for trial in complete for name in trial.params})
    importances: dict[str, float] = {}
    if len(complete) >= 2 and searched:
        importances = _quietly(lambda: optuna.importance.get_param_importances(study)) or {}
    top = [name for name in importances if name in searched][:2] or searched[:2]

    plots: list[tuple[str, Callable[[], Any]]] = [
        ("optimization_history", lambda: optuna_plots.plot_optimization_history(study)),
        ("intermediate_values", lambda: optuna_plots.plot_intermediate_values(study)),
    ]
    if importances:
        plots.append(("param_importances", lambda: optuna_plots.plot_param_importances(study)))
    if len(complete) >= 2 and searched:
        plots.append(("parallel_coordinate", lambda: optuna_plots.plot_parallel_coordinate(study)))
    if len(complete) >= 2 and len(top) == 2:
        plots.append(("contour", lambda: optuna_plots.plot_contour(study, params=top)))
    for name, draw in plots:
        path = _save_axes(draw, out_dir / f"{name}.png")
        if path is not None:
            written.append(path)
    return written


def _quietly(call: Callable[[], Any]) -> Any:
    """``call()`` with Optuna's warnings silenced; ``None`` where Optuna cannot compute it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call()
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            logger.info("skipped: %s", error)
            return None


def _save_axes(draw: Callable[[], Any], path: Path) -> Path | None:
    """Save the figure ``draw()`` returns axes of; ``None`` when it drew nothing."""
    import matplotlib.pyplot as plt
    import numpy as np

    axes = _quietly(draw)
    if axes is None:
        return None
    all_axes = list(np.ravel(axes)) if isinstance(axes, np.ndarray) else [axes]
    figure = all_axes[0].figure
    try:
        if not any(ax.has_data() for ax in all_axes):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            figure.savefig(path, dpi=110, bbox_inches="tight")
        return path
    finally:
        plt.close(figure)


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """The spec summary the runner stored on the study (task, objective, ...); empty if none."""
    text = study.user_attrs.get("spec")
    return json.loads(text) if isinstance(text, str) else {}
