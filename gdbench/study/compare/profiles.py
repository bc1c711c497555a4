"""Performance profiles over several studies (Dolan & Moré 2002; AlgoPerf, Dahl et al. 2023).

Each study is one task; each optimizer (by its label) of the studies is one
solver. Its cost on a task is, by default, its best trial's value: the least
time to the target of a time-to-target study (:mod:`gdbench.study.spec.objectives`),
or the least value of a minimized positive objective (a loss). A solver whose
best trial never reached the target (no epoch's report reached it), or that
has no complete trial on a task, costs ∞ there. Other costs (a mean over
confirmation seeds) can be passed in instead (``costs=``).

With c(s, p) the cost of solver s on task p, over the P tasks:

    r(s, p) = c(s, p) / min_s' c(s', p)          (∞ when c(s, p) = ∞)
    ρ_s(τ)  = |{p : r(s, p) ≤ τ}| / P           (τ ≥ 1)
    B_s     = 1/(τ_max − 1) · ∫_1^τ_max ρ_s(τ) dτ

ρ_s(1) is the fraction of tasks where s was best, ρ_s(τ) the fraction it
solved within τ times the best cost. The area score B_s lies in [0, 1], 1 only
for a solver best on every task; it is integrated on a linear τ axis, as
AlgoPerf's benchmark score is, with AlgoPerf's τ_max = 4. As ρ_s is a step
function the integral is exact: each task adds (τ_max − r(s, p)) / P where
r(s, p) < τ_max.

A task where no solver has a finite cost says nothing about any of them and is
left out (and named in :attr:`Profiles.unsolved`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from gdbench import comparison_plots
from gdbench._files import written_whole
from gdbench.study.keys import SPEC_ATTR, TARGET_REACHED_ATTR
from gdbench.study.spec.model import MAX_NAME_LENGTH
from gdbench.study.spec.objectives import reached
from gdbench.study.trials.storage import counted_trials
from gdbench.study.trials.stored import trial_hyperparameters

__all__ = [
    "DEFAULT_TAU_MAX", "Profiles", "area_scores", "performance_profiles", "performance_ratios",
    "profile_values", "set_folder_name", "study_costs", "write_profiles",
]

#: AlgoPerf's upper end of the performance ratio's range.
DEFAULT_TAU_MAX = 4.0


def performance_ratios(costs: np.ndarray) -> np.ndarray:
    """r[s, p] = costs[s, p] / min over s of costs[s, p]; ∞ where a cost is ∞ or NaN.

    Args:
        costs: ``[solvers, tasks]``, positive; ∞ (or NaN) where a solver failed.
    """
    costs = np.asarray(costs, dtype=float)
    if costs.ndim != 2:
        raise ValueError(f"costs: expected [solvers, tasks], got shape {costs.shape}")
    costs = np.where(np.isnan(costs), np.inf, costs)
    if np.any(costs <= 0):
        raise ValueError("costs: expected positive costs (a time, or a positive minimized value)")
    best = costs.min(axis=0, keepdims=True)
    with np.errstate(invalid="ignore"):
        ratios = costs / best
    return np.where(np.isfinite(costs) & np.isfinite(best), ratios, np.inf)


def profile_values(ratios: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """ρ[s, t] = the fraction of tasks with r[s, p] ≤ taus[t]."""
    ratios = np.asarray(ratios, dtype=float)
    taus = np.asarray(taus, dtype=float)
    return (ratios[:, :, None] <= taus[None, None, :]).mean(axis=1)


def area_scores(ratios: np.ndarray, tau_max: float = DEFAULT_TAU_MAX) -> np.ndarray:
    """B[s] = 1/(τ_max − 1) ∫_1^τ_max ρ_s(τ) dτ, exactly (see the module docstring)."""
    if not tau_max > 1:
        raise ValueError(f"tau_max: expected a number > 1, got {tau_max!r}")
    ratios = np.asarray(ratios, dtype=float)
    below = np.clip(tau_max - np.maximum(ratios, 1.0), 0.0, None)
    return below.mean(axis=1) / (tau_max - 1.0)


@dataclasses.dataclass(frozen=True)
class Profiles:
    """Performance profiles of solvers over tasks.

    Attributes:
        solvers: the optimizers' labels.
        tasks: the tasks (studies) profiled.
        costs: ``[solvers, tasks]``.
        ratios: ``[solvers, tasks]`` performance ratios.
        scores: each solver's area score.
        tau_max: the upper end of τ.
        unsolved: tasks left out, no solver having a finite cost there.
    """

    solvers: tuple[str, ...]
    tasks: tuple[str, ...]
    costs: np.ndarray
    ratios: np.ndarray
    scores: np.ndarray
    tau_max: float
    unsolved: tuple[str, ...] = ()

    def curves(self, points: int = 200) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """τ on a log grid from 1 to τ_max, every ratio included, and each solver's ρ(τ)."""
        grid = np.geomspace(1.0, self.tau_max, points)
        inside = self.ratios[np.isfinite(self.ratios) & (self.ratios <= self.tau_max)]
        taus = np.unique(np.concatenate([grid, inside]))
        values = profile_values(self.ratios, taus)
        return taus, dict(zip(self.solvers, values))


def performance_profiles(costs: Mapping[str, Mapping[str, float]],
                         tau_max: float = DEFAULT_TAU_MAX) -> Profiles:
    """Profiles from per-task costs.

    Args:
        costs: task → solver → cost (∞ where never reached); a solver absent
            from a task costs ∞ there.
        tau_max: the upper end of τ (the area score's range).

    Raises:
        ValueError: no task with a finite cost, or a cost ≤ 0.
    """
    solvers = sorted({solver for per_task in costs.values() for solver in per_task})
    tasks = [task for task in costs
             if any(math.isfinite(value) for value in costs[task].values())]
    unsolved = tuple(task for task in costs if task not in tasks)
    if not tasks:
        raise ValueError("costs: no task where any optimizer has a finite cost")
    matrix = np.array([[costs[task].get(solver, math.inf) for task in tasks]
                       for solver in solvers], dtype=float)
    ratios = performance_ratios(matrix)
    return Profiles(solvers=tuple(solvers), tasks=tuple(tasks), costs=matrix, ratios=ratios,
                    scores=area_scores(ratios, tau_max), tau_max=float(tau_max),
                    unsolved=unsolved)


def study_costs(study: optuna.Study) -> dict[str, float]:
    """Each optimizer's cost on ``study``'s task: its best complete trial's value.

    ∞ for an optimizer none of whose trials of a time-to-target study reached
    the target (each trial records whether it did,
    :data:`gdbench.study.trials.keys.TARGET_REACHED_ATTR`; for a trial recorded
    without it, whether one of its per-epoch reports reached it).

    Raises:
        ValueError: the study maximizes its objective (a cost must be minimized).
    """
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ValueError(f"study {study.study_name!r}: maximizes its objective; a performance "
                         "profile needs a minimized cost (a time to a target, or a loss)")
    recorded = json.loads(study.user_attrs.get(SPEC_ATTR, "{}"))
    only = (recorded.get("optimizers") or [""])[0]
    target = recorded.get("target")
    costs: dict[str, float] = {}
    for trial in counted_trials(study):
        label = trial_hyperparameters(trial).get("optimizer") or only
        costs.setdefault(label, math.inf)
        if trial.state != TrialState.COMPLETE:
            continue
        if target is not None and not trial.user_attrs.get(TARGET_REACHED_ATTR, any(
                reached(value, target, recorded["metric_direction"])
                for value in trial.intermediate_values.values())):
            continue
        costs[label] = min(costs[label], float(trial.value))
    return costs


def write_profiles(studies: Sequence[optuna.Study], out_dir: str | Path, *,
                   costs: Mapping[str, Mapping[str, float]] | None = None,
                   tau_max: float = DEFAULT_TAU_MAX) -> list[Path]:
    """Write ``profiles.csv`` (costs, ratios, area scores) and ``profiles.png`` into ``out_dir``.

    Args:
        studies: one study per task.
        out_dir: the folder, created if missing.
        costs: study name → optimizer → cost, instead of :func:`study_costs`.
        tau_max: the upper end of τ.

    Returns:
        The files written.
    """
    if costs is None:
        costs = {study.study_name: study_costs(study) for study in studies}
    profiles = performance_profiles(costs, tau_max)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "profiles.csv"
    with written_whole(table) as partial, open(partial, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["optimizer", "area_score",
                         *(f"cost:{task}" for task in profiles.tasks),
                         *(f"ratio:{task}" for task in profiles.tasks)])
        for index in np.argsort(-profiles.scores, kind="stable"):
            writer.writerow([profiles.solvers[index], f"{profiles.scores[index]:.6g}",
                             *(f"{value:.6g}" for value in profiles.costs[index]),
                             *(f"{value:.6g}" for value in profiles.ratios[index])])
    taus, curves = profiles.curves()
    figure = comparison_plots.plot_performance_profiles(
        taus, curves, out / "profiles.png", tau_max=profiles.tau_max,
        scores=dict(zip(profiles.solvers, profiles.scores.tolist())),
        title=f"performance profiles over {len(profiles.tasks)} tasks")
    return [table, figure]


def set_folder_name(names: Sequence[str]) -> str:
    """The report folder of a set of studies: their names joined by ``+``, or, when that would
    be too long a name, ``profiles-`` and a digest of them."""

    joined = "+".join(names)
    if len(joined) <= MAX_NAME_LENGTH:
        return joined
    return "profiles-" + hashlib.sha1(joined.encode("utf-8")).hexdigest()[:12]
