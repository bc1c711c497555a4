"""Budget-matched comparisons: the best found by each optimizer after 1, B1, B2, … trials.

A spec with ``compare = {budgets = [5, 25, 50]}`` gives every optimizer
(× schedule), a *branch*, the same random search (Schmidt, Schneider and
Hennig, 2021): as many trials as the largest budget, the first at the
branch's defaults (the optimizer's Keras defaults, the spec's fixed values,
a schedule's parameters at the middles of their ranges), the rest drawn by
the random sampler. The spec reader enforces the rest (random sampler, no
pruner, balanced branches, ``trials`` = largest budget × branches).

From the stored trials, in each branch's trial order, :func:`budget_rows`
gives the best objective after the first trial (the defaults) and after each
budget, and a row for the best of all branches at their defaults: trying
each optimizer once costs as many trials as tuning one with a budget of that
many. A trial that failed or was pruned spends its turn and finds nothing.

References:
    Schmidt, Schneider, Hennig (2021): Descending through a crowded valley —
    benchmarking deep learning optimizers, ICML, arXiv:2007.01547.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from gdbench import comparison_plots
from gdbench._files import written_whole
from gdbench.study.text import cell, text_table
from gdbench.study.keys import COMPARE_BUDGETS_ATTR
from gdbench.study.trials.storage import counted_trials
from gdbench.study.trials.stored import trial_hyperparameters
from gdbench.tracking.names import NO_SCHEDULE, branch_label

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULTS_ROW", "best_so_far", "branch_values", "budget_rows", "first_trial_params",
    "format_budgets", "stored_budgets", "write_budget_files",
]

#: The optimizer cell of the row "best of all branches at their defaults".
DEFAULTS_ROW = "best of all at their defaults"


def branch_values(study: optuna.Study) -> dict[tuple[str, str], list[float | None]]:
    """(optimizer, schedule) → the objective of each of its counted trials, in trial order.

    ``None`` stands for a trial that failed or was pruned (or a non-finite value).
    """
    branches: dict[tuple[str, str], list[float | None]] = {}
    for trial in sorted(counted_trials(study), key=lambda t: t.number):
        values = trial_hyperparameters(trial)
        branch = (str(values.get("optimizer", "")), str(values.get("schedule", "")))
        complete = (trial.state == TrialState.COMPLETE and trial.value is not None
                    and math.isfinite(trial.value))
        branches.setdefault(branch, []).append(trial.value if complete else None)
    return branches


def best_so_far(values: Sequence[float | None], direction: str) -> list[float | None]:
    """The best of ``values[:k + 1]`` for every k; ``None`` while none is known.

    Args:
        values: objective values in trial order, ``None`` for none.
        direction: ``"minimize"`` or ``"maximize"``.
    """
    better = min if direction == "minimize" else max
    best: float | None = None
    found = []
    for value in values:
        if value is not None:
            best = value if best is None else better(best, value)
        found.append(best)
    return found


def budget_rows(study: optuna.Study, budgets: Sequence[int]) -> list[dict[str, Any]]:
    """The budget table: per branch, the best after 1 trial (the defaults) and each budget.

    Each row holds ``optimizer``, ``schedule``, ``trials`` (counted trials of
    the branch) and ``best_after_<n>`` for n = 1 and every budget (``None``
    where nothing finished, or the branch has fewer than n trials). The last
    row, :data:`DEFAULTS_ROW`, holds the best of the branches' first trials
    under ``best_after_1``, with ``trials`` the branches' count.

    Args:
        study: the study.
        budgets: the spec's budgets.
    """
    direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE \
        else "minimize"
    counts = sorted({1, *budgets})
    rows = []
    firsts: list[float | None] = []
    for (optimizer, schedule), values in branch_values(study).items():
        best = best_so_far(values, direction)
        row: dict[str, Any] = {"optimizer": optimizer, "schedule": schedule,
                               "trials": len(values)}
        row.update({f"best_after_{n}": best[n - 1] if n <= len(best) else None for n in counts})
        rows.append(row)
        firsts.append(values[0] if values else None)
    if rows:
        defaults = best_so_far(firsts, direction)[-1]
        row = {"optimizer": DEFAULTS_ROW, "schedule": "", "trials": len(firsts)}
        row.update({f"best_after_{n}": defaults if n == 1 else None for n in counts})
        rows.append(row)
    return rows


def format_budgets(rows: Sequence[Mapping[str, Any]]) -> str:
    """The budget table as plain text: one line per branch, one column per budget."""
    if not rows:
        return "(no finished trial)"
    budget_columns = [key for key in rows[0] if key.startswith("best_after_")]
    header = ["optimizer", "schedule", "trials"] + [
        "defaults" if key == "best_after_1" else f"best@{key.removeprefix('best_after_')}"
        for key in budget_columns]
    schedules = any(row["schedule"] not in ("", NO_SCHEDULE) for row in rows)
    if not schedules:
        header.remove("schedule")
    table = [header]
    for row in rows:
        keys = ["optimizer"] + (["schedule"] if schedules else []) + ["trials"] + budget_columns
        table.append([cell(row[key]) for key in keys])
    lines = text_table(table)
    return "\n".join(lines)


def write_budget_files(study: optuna.Study, out_dir: str | Path, budgets: Sequence[int],
                       metric: str) -> list[Path]:
    """``budgets.csv`` and ``budgets.png`` (best so far against trials, per branch).

    Args:
        study: the study, a budget-matched comparison.
        out_dir: the report folder.
        budgets: its budgets (``compare.budgets``).
        metric: its objective's metric (the figure's axis).

    Returns:
        The files written (none for a study with no finished trial).
    """
    rows = budget_rows(study, budgets)
    if not rows:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "budgets.csv"
    with written_whole(path) as partial, open(partial, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if value is None else value for key, value in row.items()})
    direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE \
        else "minimize"
    curves = {}
    for (optimizer, schedule), values in branch_values(study).items():
        curves[branch_label(optimizer, schedule)] = [math.nan if v is None else v for v in best_so_far(values, direction)]
    defaults = rows[-1]["best_after_1"]
    figure = out_dir / "budgets.png"
    with written_whole(figure) as partial:
        comparison_plots.plot_best_so_far(
            curves, partial, budgets=budgets, metric=metric,
            reference=None if defaults is None else (DEFAULTS_ROW, defaults),
            title=f"{study.study_name}: best {metric} found against trials")
    return [path, figure]


def stored_budgets(study: optuna.Study) -> tuple[int, ...] | None:
    """The budgets a budget-matched comparison recorded in its study; ``None`` for another study."""
    recorded = study.user_attrs.get(COMPARE_BUDGETS_ATTR)
    return tuple(int(budget) for budget in recorded) if isinstance(recorded, list) else None
