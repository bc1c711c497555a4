"""The report of a confirmation: each optimizer's best over seeds, ranked by its mean.

Read from the companion study alone (:mod:`gdbench.study.compare.confirm`): each
rerun keeps its curves and final metrics, so the table and figures need
neither the spec nor MLflow. For each optimizer × schedule, over the reruns
of its current best trial (:func:`~gdbench.study.compare.confirm.best_branches`):
the objective (its last epoch), each metric's final value and each metric's
best epoch value (smallest, largest for an accuracy), each as mean, standard
deviation and 95 % bootstrap interval (:func:`gdbench.study.compare.stats.summarize`).

Files: ``confirmed.csv`` (one row per optimizer × schedule, best mean first)
and ``confirmed_<metric>.png`` per metric: each optimizer's mean curve with
a band of ± one standard deviation (:func:`gdbench.comparison_plots.plot_seed_bands`),
from epoch 0 where the reruns hold the evaluation before training
(:data:`~gdbench.study.keys.INITIAL_ATTR`), from epoch 1 otherwise.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from gdbench import baselines, comparison_plots
from gdbench._files import written_whole
from gdbench.study.text import cell, text_table
from gdbench.study import keys
from gdbench.study.compare import confirm, stats
from gdbench.study.keys import FAIL_REASON_ATTR, SPEC_ATTR
from gdbench.study.trials import records
from gdbench.study.trials.session import StudyContext
from gdbench.tracking.names import branch_label

logger = logging.getLogger(__name__)

__all__ = ["ConfirmedBranch", "confirmed", "confirmed_leaderboard", "format_confirmed",
           "write_confirm_report"]

#: A curve's history key that is no metric: η at each epoch.
_NOT_METRICS = ("learning_rate",)


@dataclasses.dataclass(frozen=True)
class ConfirmedBranch:
    """One optimizer × schedule's best trial, rerun over seeds.

    Attributes:
        optimizer: the optimizer's label.
        schedule: the schedule's label.
        trial: the trial rerun.
        value: its own (single-seed) objective value.
        seeds: the seeds of its finished reruns, in order.
        values: the objective of each (NaN for a rerun that failed).
        curves: metric → one per-epoch curve per seed.
        initial: metric → each seed's value before training (epoch 0), in the order
            of ``curves[metric]``'s runs (NaN for a run without one); only the metrics
            the task's protocol evaluates before training.
        final_metrics: metric → one final value per seed (the task's final
            metrics: image tasks add the test set's).
        objective: the objective's summary.
        final: metric → summary of its final values.
        best: metric → summary of its best epoch values.
        failed: reruns that failed (diverged), with their reasons.
        seed_varies: whether the seeds gave different runs at all.
        reused: seeds not rerun: the seed moves nothing in the task, the trial's value
            stands for each (:data:`~gdbench.study.keys.REUSED_ATTR`).
    """

    optimizer: str
    schedule: str
    trial: int
    value: float
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    curves: dict[str, list[list[float]]]
    initial: dict[str, list[float]]
    final_metrics: dict[str, list[float]]
    objective: stats.Summary
    final: dict[str, stats.Summary]
    best: dict[str, stats.Summary]
    failed: tuple[str, ...]
    seed_varies: bool
    reused: int = 0


def _maximized(metric: str) -> bool:
    return "accuracy" in metric


def confirmed(study: optuna.Study) -> list[ConfirmedBranch]:
    """Each optimizer × schedule's confirmation, best mean objective first; ``[]`` when the
    study has none (a branch without a finished rerun is left out)."""
    companion = confirm.open_companion(study, records.storage_of(study), create=False)
    if companion is None:
        return []
    reruns = [t for t in companion.get_trials(deepcopy=False)
              if t.state == TrialState.COMPLETE
              or (t.state == TrialState.FAIL and FAIL_REASON_ATTR in t.user_attrs
                  and not t.user_attrs.get(keys.INTERRUPTED_ATTR))]
    found = []
    for branch in confirm.best_branches(study):
        mine = {}
        for trial in reruns:
            if trial.user_attrs.get(keys.SOURCE_ATTR) == branch.trial.number:
                # A seed rerun twice (two processes racing) counts once: the first to finish.
                mine.setdefault(int(trial.user_attrs[keys.SEED_ATTR]), trial)
        if mine:
            found.append(_summarized(branch, [mine[seed] for seed in sorted(mine)]))
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(found, key=lambda b: (math.isnan(b.objective.mean), sign * b.objective.mean
                                        if not math.isnan(b.objective.mean) else 0.0))


def _summarized(branch: confirm.Branch,
                trials: Sequence[optuna.trial.FrozenTrial]) -> ConfirmedBranch:
    curves: dict[str, list[list[float]]] = {}
    starts: dict[str, list[float]] = {}
    finals: dict[str, list[float]] = {}
    for trial in trials:
        before = trial.user_attrs.get(keys.INITIAL_ATTR, {})
        for key, curve in trial.user_attrs.get(keys.CURVES_ATTR, {}).items():
            if key not in _NOT_METRICS:
                curves.setdefault(key, []).append([float(v) for v in curve])
                starts.setdefault(key, []).append(float(before.get(key, math.nan)))
        for key, value in trial.user_attrs.get(keys.METRICS_ATTR, {}).items():
            finals.setdefault(key, []).append(float(value))
    values = tuple(float(t.value) if t.state == TrialState.COMPLETE else math.nan
                   for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    final_values = {key: [float(t.user_attrs[keys.METRICS_ATTR].get(key, math.nan))
                          for t in complete] for key in finals}
    for key, runs in curves.items():
        final_values.setdefault(key, [run[-1] if run else math.nan for run in runs])
    runs_of = [t.user_attrs.get(keys.CURVES_ATTR, {}) for t in trials]
    seed_varies = any(run != runs_of[0] for run in runs_of[1:])
    return ConfirmedBranch(
        optimizer=branch.optimizer, schedule=branch.schedule, trial=branch.trial.number,
        value=float(branch.trial.value),
        seeds=tuple(int(t.user_attrs[keys.SEED_ATTR]) for t in trials), values=values,
        curves=curves, final_metrics=final_values,
        initial={key: starting for key, starting in starts.items()
                 if not all(math.isnan(value) for value in starting)},
        objective=stats.summarize(values),
        final={key: stats.summarize(v) for key, v in final_values.items()},
        best={key: stats.summarize([stats.best_value(run, _maximized(key)) for run in runs])
              for key, runs in curves.items()},
        failed=tuple(str(t.user_attrs[FAIL_REASON_ATTR]) for t in trials
                     if t.state == TrialState.FAIL),
        seed_varies=seed_varies,
        reused=sum(1 for t in trials if t.user_attrs.get(keys.REUSED_ATTR)))


def format_confirmed(branches: Sequence[ConfirmedBranch], metric: str = "objective") -> str:
    """The confirmation as a plain-text leaderboard: rank by the mean objective, the trial
    and its own value, the mean ± standard deviation and the 95 % bootstrap interval."""
    if not branches:
        return "(no confirmation)"
    header = ["rank", "optimizer", "schedule", "trial", "value", f"{metric} mean ± std",
              "95% interval", "seeds"]
    table = [header]
    for rank, branch in enumerate(branches, start=1):
        summary = branch.objective
        seeds = f"{summary.n}/{len(branch.seeds)}"
        table.append([str(rank), branch.optimizer, branch.schedule, str(branch.trial),
                      cell(branch.value),
                      f"{cell(summary.mean)} ± {cell(summary.std)}",
                      f"[{cell(summary.low)}, {cell(summary.high)}]", seeds])
    lines = text_table(table)
    reused = [branch_label(b.optimizer, b.schedule) for b in branches if b.reused]
    same = [branch_label(b.optimizer, b.schedule) for b in branches
            if not b.seed_varies and not b.reused]
    if reused:
        lines.append(f"note: the seed moves nothing in this task (the same start, data and "
                     f"batches for every seed): nothing was rerun for {', '.join(reused)}; "
                     "the trial's value stands for each seed")
    if same:
        lines.append(f"note: the seed changes nothing for {', '.join(same)} on this task "
                     "(every seed gave the same run): no spread to show")
    failed = sum(len(b.failed) for b in branches)
    if failed:
        lines.append(f"note: {failed} rerun(s) failed (diverged); they are left out of the means")
    return "\n".join(lines)


def confirmed_leaderboard(study: optuna.Study) -> str | None:
    """The study's confirmed leaderboard with a line saying over how many seeds; ``None``
    when the study has no confirmation."""
    branches = confirmed(study)
    if not branches:
        return None
    metric = json.loads(study.user_attrs.get(SPEC_ATTR, "{}")).get("metric", "objective")
    seeds = max(len(branch.seeds) for branch in branches)
    return (f"confirmed over {seeds} seeds (ranked by the mean; single-seed trials below)\n"
            + format_confirmed(branches, metric))


def _rows(branches: Sequence[ConfirmedBranch]) -> list[dict[str, Any]]:
    rows = []
    for rank, branch in enumerate(branches, start=1):
        row: dict[str, Any] = {
            "rank": rank, "optimizer": branch.optimizer, "schedule": branch.schedule,
            "trial": branch.trial, "value": branch.value,
            "seeds": " ".join(str(seed) for seed in branch.seeds),
            "failed": len(branch.failed), "seed_varies": branch.seed_varies,
        }
        parts = [("objective", branch.objective)]
        parts += [(f"final_{key}", summary) for key, summary in branch.final.items()]
        parts += [(f"best_{key}", summary) for key, summary in branch.best.items()]
        for name, summary in parts:
            row.update({f"{name}_n": summary.n, f"{name}_mean": summary.mean,
                        f"{name}_std": summary.std, f"{name}_ci_low": summary.low,
                        f"{name}_ci_high": summary.high})
        rows.append(row)
    return rows


def write_confirm_report(study: optuna.Study, out_dir: str | Path,
                         context: StudyContext | None = None) -> list[Path]:
    """Write ``confirmed.csv`` and one ``confirmed_<metric>.png`` per metric; nothing when the
    study has no confirmation.

    For a task DeepOBS shares, a figure of a metric DeepOBS published draws
    its baselines behind the curves (:func:`gdbench.comparison_plots.draw_baselines`)
    when the study trained the problem as DeepOBS did; otherwise the figure
    says why not (:func:`gdbench.baselines.mismatch`), and so does the log.

    Args:
        study: the study.
        out_dir: the folder, created if missing.
        context: the study's task and size; ``None`` draws no baselines.

    Returns:
        The files written.
    """
    branches = confirmed(study)
    if not branches:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _rows(branches)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    path = out_dir / "confirmed.csv"
    with written_whole(path) as partial, open(partial, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if isinstance(row.get(key), float) and np.isnan(row[key])
                             else row.get(key, "") for key in columns})
    written = [path]
    metrics = list(dict.fromkeys(key for branch in branches for key in branch.curves))
    problem, refusal = _baseline(context)
    for metric in metrics:
        drawn = [branch for branch in branches if branch.curves.get(metric)]
        curves = {_label(branch): branch.curves[metric] for branch in drawn}
        initial = {_label(branch): branch.initial[metric] for branch in drawn
                   if metric in branch.initial}
        target = out_dir / f"confirmed_{re.sub(r'[^a-z0-9]+', '_', metric.lower())}.png"
        published = metric in baselines.METRICS.values()
        with written_whole(target) as partial:
            comparison_plots.plot_seed_bands(
                curves, partial, metric=metric, band="std", log_scale="accuracy" not in metric,
                initial=initial,
                baseline=problem if published and refusal is None else None,
                note=f"DeepOBS baselines not drawn: {refusal}" if published and refusal else None)
        written.append(target)
    return written


def _baseline(context: StudyContext | None) -> tuple[str | None, str | None]:
    """The DeepOBS problem of the study's task, and why its baselines cannot be drawn
    (``None`` when they can); ``(None, None)`` for a task DeepOBS does not share."""
    if context is None:
        return None, None
    problem = baselines.problem_for(context.task.name)
    if problem is None:
        return None, None
    refusal = baselines.mismatch(context.task, context.batch_size, context.epochs)
    if refusal is not None:
        logger.info("DeepOBS baselines not drawn behind the confirmed curves: %s", refusal)
    return problem, refusal


def _label(branch: ConfirmedBranch) -> str:
    return branch_label(branch.optimizer, branch.schedule)
