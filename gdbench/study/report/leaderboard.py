"""A study's report: the leaderboard (printed and CSV), Optuna's own plots, the best of each.

:func:`leaderboard` reads the Optuna study only. :func:`write_report`
(``gdbench report STUDY``) writes the report from the stored results, at any
time, without the spec: the leaderboard and Optuna's plots from the storage,
the best trials' figures of every optimizer (:mod:`gdbench.study.report.figures`)
from the curves the MLflow store holds. :func:`write_study_report`
(``gdbench run``) writes the same files, and attaches the figures to the
trials' runs. Files are written whole (to a temporary name, then renamed), so
that processes finishing one study together never leave a torn file.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from gdbench._figure_pool import FigurePool
from gdbench._files import written_whole
from gdbench.study.text import cell, text_table
from gdbench.study.compare import budgets, protocol
from gdbench.study.keys import (
    EPOCHS_RUN_ATTR,
    SPEC_ATTR,
)
from gdbench.study.report import by_optimizer, figures, optuna_plots
from gdbench.study.report.confirmed import write_confirm_report
from gdbench.study.spec.model import StudySpec
from gdbench.study.trials.progress import ReportProgress
from gdbench.study.trials.session import Locations, StudyContext
from gdbench.study.trials.storage import counted_trials
from gdbench.study.trials.stored import (
    stored_context,
    trial_hyperparameters,
    trial_reason,
)
from gdbench.tracking import StoredStudy

if TYPE_CHECKING:
    from gdbench.tracking import StudyTracker

__all__ = ["format_leaderboard", "leaderboard", "write_optuna_report", "write_report",
           "write_study_report"]

_FIRST_COLUMNS = ("rank", "trial", "state", "value", "optimizer", "schedule")
_LAST_COLUMNS = ("epochs_run", "duration_s", "reason")
_STATE_ORDER = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.FAIL: 2}

def leaderboard(study: optuna.Study) -> list[dict[str, Any]]:
    """Every finished trial that counts, best first: complete by value, then pruned, then failed.

    A trial that a retry replaces (it was interrupted, or its process died)
    is left out: its retry is the trial that counts.

    Each row holds ``rank`` (1 for the best complete trial; none for the
    others), ``trial``, ``state``, ``value``, ``optimizer``, ``schedule``,
    every hyperparameter by its tracked name, ``epochs_run``, ``duration_s``
    and ``reason`` (why it failed or was pruned).

    Args:
        study: the study.
    """
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    trials = counted_trials(study)

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
        return len({cell(row.get(column)) for row in rows}) > 1

    shown = list(rows[:limit])
    columns = ["rank", "trial", "state", "value"]
    columns += [column for column in ("optimizer", "schedule") if varies(column)]
    searched = [column for column in _columns(rows)
                if column not in _FIRST_COLUMNS and column not in _LAST_COLUMNS and varies(column)]
    epochs = ["epochs"] if varies("epochs_run") else []
    table = [columns + ["hyperparameters"] + epochs + ["reason"]]
    for row in shown:
        values = " ".join(f"{column.removeprefix('schedule.')}={cell(row[column])}"
                          for column in searched if row.get(column) is not None)
        line = [cell(row.get(column)) for column in columns] + [values]
        if epochs:
            line.append(cell(row.get("epochs_run")))
        table.append(line + [cell(row.get("reason"))[:60]])
    lines = text_table(table)
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more in leaderboard.csv")
    return "\n".join(lines)


def write_leaderboard_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Every row of the leaderboard as CSV, one column per field."""
    columns = _columns(rows)
    with written_whole(path) as partial, open(partial, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    return path


def write_report(study: optuna.Study, out_dir: str | Path, *,
                 tracking_uri: str | None = None, quiet: bool = True,
                 pool: FigurePool | None = None) -> list[Path]:
    """Write the report of a stored study into ``out_dir``: what ``gdbench run`` writes.

    The leaderboard and Optuna's plots (:func:`write_optuna_report`), the best
    trial of each optimizer (``best_of_each.md``) and the learning-rate
    sensitivity plot (``lr_sensitivity.png``, :mod:`gdbench.study.report.by_optimizer`), a
    budget-matched comparison's budget table and figure, a confirmation's
    ``confirmed.csv`` and figures (:mod:`gdbench.study.report.confirmed`), and the
    best trials' figures of every optimizer (:func:`gdbench.study.report.figures.write_figures`),
    drawn from the curves stored in ``tracking_uri``; toy trials are trained
    again for their paths, and for their curves where none is stored. The
    task and the study's size come from the study (the task it recorded) and
    from its MLflow parent run (epochs, batch size); without MLflow, from the
    trials' epochs and the task's batch size. A study that recorded no task
    gets no figures.

    Args:
        study: the study.
        out_dir: the folder, created if missing.
        tracking_uri: the MLflow store the study was tracked in; ``None`` if none.
        quiet: no progress bar of the files written.
        pool: writes the figures (:class:`gdbench._figure_pool.FigurePool`), waited
            for before this returns; ``None`` for a pool of this call's own.

    Returns:
        The files written. Their figures are written by worker processes where
        the machine has two cores or more (:class:`gdbench._figure_pool.FigurePool`).
    """
    progress = ReportProgress(study.study_name, quiet)
    try:
        if pool is not None:
            written = _write_report(study, out_dir, tracking_uri, progress, pool)
            pool.wait()
            return written
        with FigurePool() as own:
            return _write_report(study, out_dir, tracking_uri, progress, own)
    finally:
        progress.close()


def _write_report(study: optuna.Study, out_dir: str | Path, tracking_uri: str | None,
                  progress: ReportProgress, pool: FigurePool) -> list[Path]:
    written = write_optuna_report(study, out_dir, progress=progress, pool=pool)
    if SPEC_ATTR not in study.user_attrs:
        return written + write_confirm_report(study, out_dir)
    recorded = json.loads(study.user_attrs[SPEC_ATTR])
    written += by_optimizer.write_comparison(study, out_dir, recorded["metric"], pool)
    compared = budgets.stored_budgets(study)
    if compared is not None:
        written += budgets.write_budget_files(study, out_dir, compared, recorded["metric"])
    context = stored_context(study, tracking_uri)
    written += write_confirm_report(study, out_dir, context)
    if context.epochs < 1:
        return written
    return written + _write_figures(study, out_dir, context=context, metric=recorded["metric"],
                                    tracking_uri=tracking_uri, progress=progress, pool=pool)


def write_optuna_report(study: optuna.Study, out_dir: str | Path, *,
                        progress: ReportProgress | None = None,
                        pool: FigurePool | None = None) -> list[Path]:
    """Write the leaderboard and Optuna's plots into ``out_dir``.

    Files: ``leaderboard.csv``; ``optimization_history.png``,
    ``intermediate_values.png``, ``param_importances.png``, and
    ``parallel_coordinate.png`` and ``contour.png``, per optimizer where the
    study compares several (:mod:`gdbench.study.report.optuna_plots`).

    Args:
        study: the study.
        out_dir: the folder, created if missing.
        progress: counts each file written; ``None`` for none.
        pool: writes the figures (:class:`gdbench._figure_pool.FigurePool`); ``None``
            writes them here.

    Returns:
        The files written (by ``pool``'s workers, once it finishes).
    """
    progress = progress or ReportProgress(study.study_name, quiet=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = leaderboard(study)
    written = [write_leaderboard_csv(rows, out_dir / "leaderboard.csv")]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return written
    return written + optuna_plots.write_optuna_plots(study, out_dir, complete, progress, pool)


def write_study_report(spec: StudySpec, study: optuna.Study, where: Locations,
                       context: StudyContext, tracker: StudyTracker | None = None, *,
                       quiet: bool = True) -> list[Path]:
    """The report of a study this process ran: the files of :func:`write_report`.

    The best trial of each optimizer and the learning-rate sensitivity plot
    as :func:`write_report` writes them. A comparison adds its protocol note (:mod:`gdbench.study.compare.protocol`), and a
    budget-matched one its budget table and figure (:mod:`gdbench.study.compare.budgets`).

    The figures are drawn from this run's task and size (``context``) and
    from what ``tracker`` stored, once its writes are in the store; each
    trial drawn gets its optimizer's figures in its MLflow run and
    TensorBoard session.

    Args:
        spec: the study's spec.
        study: the study.
        where: its locations (``report_dir``, ``tracking_uri``).
        context: its task and size.
        tracker: its tracker; ``None`` attaches nothing to the trials.
        quiet: no progress bar of the files written.
    """
    progress = ReportProgress(spec.name, quiet)
    try:
        with FigurePool() as pool:
            return _write_study_report(spec, study, where, context, tracker, progress, pool)
    finally:
        progress.close()


def _write_study_report(spec: StudySpec, study: optuna.Study, where: Locations,
                        context: StudyContext, tracker: StudyTracker | None,
                        progress: ReportProgress, pool: FigurePool) -> list[Path]:
    written = write_optuna_report(study, where.report_dir, progress=progress, pool=pool)
    written += by_optimizer.write_comparison(study, where.report_dir, spec.objective.metric,
                                             pool)
    written += write_confirm_report(study, where.report_dir, context)
    if protocol.needs_protocol(spec):
        written.append(protocol.write_protocol(spec, where.report_dir))
    if spec.compare is not None:
        written += budgets.write_budget_files(study, where.report_dir, spec.compare.budgets,
                                              spec.objective.metric)
    if tracker is not None:
        tracker.flush()
    return written + _write_figures(study, where.report_dir, context=context,
                                    metric=spec.objective.metric,
                                    tracking_uri=where.tracking_uri, tracker=tracker,
                                    progress=progress, pool=pool)


def _write_figures(study: optuna.Study, out_dir: str | Path, *, context: StudyContext,
                   metric: str, tracking_uri: str | None,
                   tracker: StudyTracker | None = None,
                   progress: ReportProgress | None = None,
                   pool: FigurePool | None = None) -> list[Path]:
    """The best trials' figures, their curves read from ``tracking_uri`` where it is given."""
    read_curves = None
    if tracking_uri is not None:
        read_curves = StoredStudy(tracking_uri, study.study_name).curves
    return figures.write_figures(study, out_dir, context=context, metric=metric,
                                 read_curves=read_curves, tracker=tracker, progress=progress,
                                 pool=pool)
