"""A study's trials by optimizer (× schedule): the best of each, and the sensitivity to η.

A study's leaderboard ranks every trial together: its top ten may hold no
trial of some optimizer. Grouped here by the optimizer's label in the study
(``"<optimizer> + <schedule>"`` when its trials use several schedules):

- :func:`complete_by_group`: each group's complete trials, best first;
- :func:`best_of_each` and :func:`format_best_of_each`: each group's best trial,
  one table, printed after the leaderboard and written as ``best_of_each.md``;
- :func:`write_sensitivity`: DeepOBS's learning-rate sensitivity plot,
  ``lr_sensitivity.png``: every complete trial's objective against its η, one
  colour per group, log axes, each group's best a star
  (:func:`gdbench.comparison_plots.plot_learning_rate_sensitivity`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from gdbench import comparison_plots
from gdbench._figure_pool import FigurePool
from gdbench._files import written_whole
from gdbench.study.keys import SETUP_ATTR, SPEC_ATTR
from gdbench.study.plan.build import TrialSetup
from gdbench.study.text import cell, markdown_table, text_table
from gdbench.study.trials.storage import counted_trials
from gdbench.study.trials.stored import trial_hyperparameters

__all__ = ["BEST_OF_EACH_FILE", "SENSITIVITY_FILE", "best_of_each", "complete_by_group",
           "format_best_of_each", "group_of", "objective_metric", "write_best_of_each",
           "write_comparison", "write_sensitivity"]

#: The best trial of each optimizer (× schedule) as a Markdown table, in the report.
BEST_OF_EACH_FILE = "best_of_each.md"

#: The learning-rate sensitivity plot, in the report.
SENSITIVITY_FILE = "lr_sensitivity.png"


def objective_metric(study: optuna.Study) -> str:
    """The objective's metric the study recorded with its spec; ``"objective"`` without one."""
    recorded = study.user_attrs.get(SPEC_ATTR)
    return str(json.loads(recorded).get("metric", "objective")) if recorded else "objective"


def write_comparison(study: optuna.Study, out_dir: str | Path,
                     metric: str | None = None, pool: FigurePool | None = None) -> list[Path]:
    """Write :data:`BEST_OF_EACH_FILE` and :data:`SENSITIVITY_FILE` where the study has them.

    Args:
        study: the study.
        out_dir: the report's folder, created if missing.
        metric: the objective's metric; by default :func:`objective_metric`'s.
        pool: writes the figure (:class:`gdbench._figure_pool.FigurePool`); ``None``
            writes it here.
    """
    metric = metric or objective_metric(study)
    return write_best_of_each(study, out_dir) + write_sensitivity(study, out_dir, metric, pool)


def _maximized(study: optuna.Study) -> bool:
    return study.direction == optuna.study.StudyDirection.MAXIMIZE


def group_of(setup: TrialSetup, several_schedules: bool) -> str:
    """A trial's group: its optimizer's label, ``"<optimizer> + <schedule>"`` when the
    study's trials use several schedules."""
    group = setup.optimizer_label
    return f"{group} + {setup.tracked_schedule}" if several_schedules else group


def _setups(trials: list[FrozenTrial]) -> tuple[dict[int, TrialSetup], bool]:
    setups = {trial.number: TrialSetup.from_json(trial.user_attrs[SETUP_ATTR])
              for trial in trials if SETUP_ATTR in trial.user_attrs}
    return setups, len({setup.tracked_schedule for setup in setups.values()}) > 1


def complete_by_group(study: optuna.Study) -> dict[str, list[FrozenTrial]]:
    """Each group's complete trials that count, best first (ties by number); groups by name.

    A trial that recorded no setup (a study not run by gdbench) is left out.
    """
    complete = [trial for trial in counted_trials(study) if trial.state == TrialState.COMPLETE]
    setups, several = _setups(complete)
    sign = -1.0 if _maximized(study) else 1.0
    groups: dict[str, list[FrozenTrial]] = {}
    for trial in sorted(complete, key=lambda trial: (sign * trial.value, trial.number)):
        if trial.number in setups:
            groups.setdefault(group_of(setups[trial.number], several), []).append(trial)
    return dict(sorted(groups.items()))


def best_of_each(study: optuna.Study) -> list[dict[str, Any]]:
    """Each group's best complete trial, best first: ``group``, ``trial``, ``value``, ``η``
    (the rate, or the one its schedule is built around), ``hyperparameters`` (its
    searched ones, ``name=value``), ``complete`` (the group's complete trials)."""
    groups = complete_by_group(study)
    searched = {name for members in groups.values() for trial in members
                for name in trial.params if name not in ("optimizer", "schedule")}
    rows = []
    for group, members in groups.items():
        best = members[0]
        values = trial_hyperparameters(best)
        setup = TrialSetup.from_json(best.user_attrs[SETUP_ATTR])
        shown = " ".join(f"{key.removeprefix('schedule.')}={cell(values[key])}"
                         for key in values if key in searched and key != "learning_rate")
        rows.append({"group": group, "trial": best.number, "value": best.value,
                     "learning_rate": setup.learning_rate, "hyperparameters": shown,
                     "complete": len(members)})
    sign = -1.0 if _maximized(study) else 1.0
    return sorted(rows, key=lambda row: (sign * row["value"], row["trial"]))


def _table(rows: list[dict[str, Any]]) -> list[list[str]]:
    header = ["rank", "optimizer", "trial", "value", "η", "other hyperparameters", "trials"]
    return [header] + [[str(rank), row["group"], str(row["trial"]), cell(row["value"]),
                        cell(row["learning_rate"]), row["hyperparameters"], str(row["complete"])]
                       for rank, row in enumerate(rows, start=1)]


def format_best_of_each(study: optuna.Study) -> str | None:
    """The best trial of each optimizer (× schedule) as a plain-text table, with a title;
    ``None`` when the study compares fewer than two."""
    rows = best_of_each(study)
    if len(rows) < 2:
        return None
    return "\n".join(["best trial of each optimizer", *text_table(_table(rows))])


def write_best_of_each(study: optuna.Study, out_dir: str | Path) -> list[Path]:
    """Write :data:`BEST_OF_EACH_FILE`, the table of :func:`format_best_of_each` in Markdown;
    nothing when the study compares fewer than two optimizers."""
    rows = best_of_each(study)
    if len(rows) < 2:
        return []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / BEST_OF_EACH_FILE
    text = (f"# {study.study_name}: the best trial of each optimizer\n\n"
            + "\n".join(markdown_table(_table(rows))) + "\n")
    with written_whole(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return [path]


def write_sensitivity(study: optuna.Study, out_dir: str | Path, metric: str,
                      pool: FigurePool | None = None) -> list[Path]:
    """Write :data:`SENSITIVITY_FILE`: every complete trial's objective against its η, per
    group, each group's best a star, its legend entry the leaderboard's value and η.

    Trials that failed or diverged are ticks along the top, at their η. Nothing is
    written for a study with no complete trial, nor for one of a single optimizer
    whose η is the same in every trial (there is nothing to compare).
    """
    groups = complete_by_group(study)
    rates = {TrialSetup.from_json(trial.user_attrs[SETUP_ATTR]).learning_rate
             for members in groups.values() for trial in members}
    if not groups or (len(groups) < 2 and len(rates) < 2):
        return []
    points = {group: [(TrialSetup.from_json(trial.user_attrs[SETUP_ATTR]).learning_rate,
                       float(trial.value)) for trial in members]
              for group, members in groups.items()}
    failed = [TrialSetup.from_json(trial.user_attrs[SETUP_ATTR]).learning_rate
              for trial in counted_trials(study)
              if trial.state == TrialState.FAIL and SETUP_ATTR in trial.user_attrs]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / SENSITIVITY_FILE
    (pool or FigurePool(workers=0)).write(
        path, lambda partial: comparison_plots.plot_learning_rate_sensitivity(
            points, partial, metric=metric, maximize=_maximized(study), failed=failed,
            value_format=cell,
            title=f"{study.study_name}: final {metric} against the learning rate η"))
    return [path]
