"""The best trials' figures, for every optimizer of a study, drawn once its trials are done.

One code path for ``gdbench run`` and ``gdbench report``: :func:`write_figures`
ranks the study's complete trials per optimizer (and per schedule, when the
study compares several), takes the :data:`FIGURE_RANK` best of each, and draws
from what the stores hold:

- loss curves from the stored per-epoch curves (a population trial's ``.npz``
  artifact, an image trial's MLflow metric history), else, for a toy trial,
  from training it again (milliseconds), else, for an image trial, the
  objective's curve as reported to Optuna;
- paths on the error surface of a 2-D toy task, from training the trial again
  (deterministic: the same path);
- the effective learning rate of every parameter, for toy tasks, from the same
  training again: the population engine records every step's slots and η and
  the factors are computed at once for all steps
  (:func:`gdbench.tasks.trace.effective_learning_rates`); a trial that trains
  alone is traced by :func:`gdbench.tasks.trace.effective_learning_rate_trace`,
  its schedule evaluated once for all steps.

Each optimizer gets its figures (``best_<optimizer>_loss_curves.png``, ...),
and the study a comparison of each optimizer's best trial (``best_loss_curves.png``,
``best_paths.png``, ``best_learning_rates.png``). Legends name each trial as
its MLflow run is named (:func:`gdbench.tracking.names.trial_run_name`).
Drawing takes a few tenths of a second a figure, most of it ``savefig``, which
worker processes do where the report gives a pool
(:class:`gdbench._figure_pool.FigurePool`) while the best trials train again:
each optimizer's figures are handed to the pool as soon as its trials are
trained again, and written while the next optimizer's train. Nothing of it
happens while trials run, and it is bounded by the optimizers compared, not
the trials.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

import gdbench.tasks
from gdbench import plots
from gdbench._figure_pool import FigurePool
from gdbench.study.keys import HYPERPARAMETERS_ATTR, SETUP_ATTR
from gdbench.study.plan.build import TrialSetup
from gdbench.study.report.by_optimizer import complete_by_group
from gdbench.study.report.optuna_plots import slug
from gdbench.study.trials import batches
from gdbench.study.trials.progress import ReportProgress
from gdbench.study.trials.session import StudyContext
from gdbench.study.trials.storage import counted_trials
from gdbench.study.trials.stored import trial_hyperparameters
from gdbench.tasks.trace import effective_learning_rate_trace
from gdbench.tracking import StudyTracker
from gdbench.tracking.names import trial_run_name

__all__ = ["FIGURE_RANK", "MAX_TRACED_STEPS", "FigureTrial", "best_trials",
           "write_figures"]

#: The best this many complete trials of each optimizer (× schedule) get figures.
FIGURE_RANK = 3

#: Effective learning rates are drawn for toy studies of at most this many steps
#: a trial (a trial that trains alone is traced one step at a time).
MAX_TRACED_STEPS = 2000

#: The effective-learning-rate figure has one panel per parameter, at most this many.
MAX_TRACED_PARAMETERS = 16

#: Reads stored per-epoch curves: trial numbers → {number: {metric: values}}.
CurveReader = Callable[[Iterable[int]], Mapping[int, Mapping[str, Sequence[float]]]]


@dataclasses.dataclass
class FigureTrial:
    """One trial drawn in the figures, with what they show of it.

    Attributes:
        number: the trial's number.
        name: its run name, the legend's entry.
        group: its optimizer (and schedule) label.
        setup: its optimizer and schedule.
        history: per-epoch curves; ``None`` where none is stored or computable.
        trajectory: ``[steps + 1, 2]`` parameters of a 2-D toy task's trial.
        learning_rates: ``[steps, P]`` effective learning rates of a toy trial.
        value: its objective, as the leaderboard holds it (the paths' legends print it).
    """

    number: int
    name: str
    group: str
    setup: TrialSetup
    history: dict[str, np.ndarray] | None = None
    trajectory: np.ndarray | None = None
    learning_rates: np.ndarray | None = None
    value: float | None = None


def best_trials(study: optuna.Study, rank: int = FIGURE_RANK) -> dict[str, list[FrozenTrial]]:
    """The ``rank`` best complete trials of each optimizer (× schedule), best first.

    The group is the optimizer's label in the study, ``"<optimizer> + <schedule>"``
    when the study's trials use several schedules. Groups are sorted by name.

    Args:
        study: the study.
        rank: trials kept per group, ≥ 1.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank: expected an integer ≥ 1, got {rank!r}")
    return {group: members[:rank] for group, members in complete_by_group(study).items()}


def write_figures(
    study: optuna.Study,
    out_dir: str | Path,
    *,
    context: StudyContext,
    metric: str,
    read_curves: CurveReader | None = None,
    tracker: StudyTracker | None = None,
    progress: ReportProgress | None = None,
    pool: FigurePool | None = None,
) -> list[Path]:
    """Draw the best trials' figures of every optimizer, and the comparison of their best.

    Files (``<group>`` the optimizer's label in lower case, ``_`` for any
    other character): ``best_<group>_loss_curves.png``, ``best_<group>_paths.png``
    (2-D toy tasks), ``best_<group>_learning_rates.png`` (toy tasks of at most
    :data:`MAX_TRACED_PARAMETERS` parameters and :data:`MAX_TRACED_STEPS`
    steps a trial); and ``best_loss_curves.png``, ``best_paths.png``,
    ``best_learning_rates.png``, each group's best trial side by side.

    Args:
        study: the study.
        out_dir: the folder, created if missing.
        context: the study's task (toy trials are trained again on it) and size.
        metric: the study's objective metric.
        read_curves: reads the stored curves of some trials; ``None`` where
            nothing is stored.
        tracker: where given, each drawn trial gets its group's figures in its
            MLflow run and TensorBoard session.
        progress: shows each phase and counts each file; ``None`` for none.
        pool: writes the figures (:class:`gdbench._figure_pool.FigurePool`), each
            counted and attached to its trials once written; ``None`` writes them here.

    Returns:
        The files written (by ``pool``'s workers, once it finishes).
    """
    progress = progress or ReportProgress(study.study_name, quiet=True)
    pool = pool or FigurePool(workers=0)
    out_dir = Path(out_dir)
    best = best_trials(study)
    if not best:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    count = sum(len(members) for members in best.values())
    collecting = (f"training the best {count} trials again"
                  if isinstance(context.task, gdbench.tasks.ToyTask)
                  else f"reading the best {count} trials' curves")
    progress.doing(collecting)
    task = context.task
    written: list[Path] = []
    attached: list[tuple[FigureTrial, str, Path]] = []
    drawn: dict[str, list[FigureTrial]] = {}
    # Each group's figures go to the pool as soon as its trials are trained again:
    # the workers write them while the next group trains.
    for group, members in _collect(study, best, read_curves, context, metric):
        drawn[group] = members
        files = _draw(members, out_dir, f"best_{slug(group)}", task, metric,
                      title=f"{group}: the best {len(members)}", shaded=True,
                      pool=pool, progress=progress)
        written += files.values()
        attached += [(member, name, path) for member in members for name, path in files.items()]
        progress.doing(collecting)
    leaders = [drawn[group][0] for group in best]
    files = _draw(leaders, out_dir, "best", task, metric, title="the best trial of each",
                  shaded=False, pool=pool, progress=progress)
    if tracker is not None:
        pool.wait()
        for member, name, path in attached:
            tracker.log_trial_figure(member.number, path, name, max(_epochs_run(member) - 1, 0))
    return written + list(files.values())


def _collect(study: optuna.Study, best: Mapping[str, list[FrozenTrial]],
             read_curves: CurveReader | None, context: StudyContext,
             metric: str) -> Iterator[tuple[str, list[FigureTrial]]]:
    """Each group with its kept trials' curves (stored, else computed) and, for toy tasks,
    paths and rates, in the order of ``best``: a group as soon as its trials are done.

    Toy trials are trained again population by population, as one call would batch
    them (:func:`_retrain`), the first group's first. An image trial with no stored
    curve shows its objective as reported to Optuna.
    """
    varying = _varying(study)
    drawn = {group: [FigureTrial(trial.number,
                                 trial_run_name(trial.number, trial_hyperparameters(trial),
                                                varying),
                                 group, TrialSetup.from_json(trial.user_attrs[SETUP_ATTR]),
                                 value=trial.value)
                     for trial in members]
             for group, members in best.items()}
    everyone = [member for members in drawn.values() for member in members]
    stored = dict(read_curves([member.number for member in everyone])) if read_curves else {}
    for member in everyone:
        if member.number in stored:
            member.history = _arrays(stored[member.number])
    trials = {trial.number: trial for members in best.values() for trial in members}
    waiting = list(drawn)

    def finished(done: set[int]) -> Iterator[tuple[str, list[FigureTrial]]]:
        # The groups, in order, up to the first with a trial still to train.
        while waiting and all(id(member) in done or id(member) not in pending
                              for member in drawn[waiting[0]]):
            group = waiting.pop(0)
            for member in drawn[group]:
                reported = trials[member.number].intermediate_values
                if member.history is None and reported:
                    member.history = {metric: np.array([reported[e] for e in sorted(reported)])}
            yield group, drawn[group]

    task = context.task
    pending: set[int] = set()
    done: set[int] = set()
    if isinstance(task, gdbench.tasks.ToyTask):
        draws_paths = context.draws_paths
        traced = (len(task.parameter_names) <= MAX_TRACED_PARAMETERS
                  and context.total_steps <= MAX_TRACED_STEPS)
        again = [member for member in everyone
                 if traced or draws_paths or member.history is None]
        pending.update(id(member) for member in again)
        for population in batches.groups([member.setup for member in again]):
            members = [again[index] for index in population]
            for member, result in zip(members, _retrain(context, [m.setup for m in members],
                                                        draws_paths, traced)):
                member.history = member.history or _arrays(result.history)
                member.trajectory = result.trajectory if draws_paths else None
                member.learning_rates = result.effective_learning_rates if traced else None
                done.add(id(member))
            yield from finished(done)
    yield from finished(done)


def _arrays(history: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    return {key: np.asarray(values, dtype=np.float64) for key, values in history.items()}


def _retrain(context: StudyContext, setups: Sequence[TrialSetup], record_trajectory: bool,
             record_rates: bool) -> list[gdbench.tasks.FitResult]:
    """Train toy trials again as the study trained them: by populations, a warm-up and a
    Keras class that is no rule one by one (:func:`batches.trains_alone`); with
    ``record_rates``, each result holds its effective learning rates where the
    optimizer has a formula for them."""
    import keras

    results: dict[int, gdbench.tasks.FitResult] = {}
    for group in batches.groups(setups):
        members = [setups[index] for index in group]
        if batches.trains_alone(members[0]):
            for index in group:
                result = context.task.fit(setups[index].build_optimizer(),
                                          epochs=context.epochs, batch_size=context.batch_size)
                if record_rates:
                    result.effective_learning_rates = _trace(context, setups[index])
                results[index] = result
                keras.backend.clear_session(free_memory=False)
            continue
        results.update(zip(group, batches.fit_group(context, members, record_trajectory,
                                                    record_rates, once=True)))
    return [results[index] for index in range(len(setups))]


def _trace(context: StudyContext, setup: TrialSetup) -> np.ndarray | None:
    try:
        return effective_learning_rate_trace(context.task, setup.build_optimizer(),
                                             epochs=context.epochs,
                                             batch_size=context.batch_size)
    except ValueError:
        # An optimizer with no formula for its effective learning rate.
        return None


def _draw(members: Sequence[FigureTrial], out_dir: Path, prefix: str, task: Any, metric: str,
          *, title: str, shaded: bool, pool: FigurePool,
          progress: ReportProgress) -> dict[str, Path]:
    """The loss curves, paths and learning rates of ``members``: figure name → file, each
    written by ``pool`` and counted by ``progress`` once written.

    Each file is written whole, as every file of the report: processes
    finishing one study together redraw the same figures.
    """
    colors = (dict(zip((member.name for member in members),
                       plots.shades_for(members[0].group, len(members))))
              if shaded else None)
    files: dict[str, Path] = {}

    def write(name: str, suffix: str, draw: Callable[[Path], Any]) -> None:
        path = out_dir / f"{prefix}_{suffix}.png"
        progress.doing(path.name)
        pool.write(path, draw, progress.wrote)
        files[name] = path

    histories = {member.name: member.history for member in members if member.history}
    if histories:
        shown = _curve_metric(histories.values(), metric)
        write("loss_curve", "loss_curves", lambda partial: plots.plot_loss_curves(
            histories, partial, metric=shown, title=f"{title}: {shown} per epoch",
            colors=colors))
    paths = {member.name: member.trajectory for member in members
             if member.trajectory is not None}
    if paths:
        write("trajectory", "paths", lambda partial: plots.plot_trajectories(
            task, paths, partial, kind="contour" if shaded else "both",
            title=f"{getattr(task, 'name', '')}: {title}", colors=colors, value_name=metric,
            final_values={member.name: member.value for member in members
                          if member.value is not None}))
    rates = {member.name: member.learning_rates for member in members
             if member.learning_rates is not None}
    if rates:
        write("learning_rates", "learning_rates", lambda partial: plots.plot_effective_learning_rates(
            rates, task.parameter_names, partial, title=f"{title}: effective learning rates",
            colors=colors))
    return files


def _curve_metric(histories: Iterable[Mapping[str, Any]], metric: str) -> str:
    """The training metric of a validation objective (its curve dashed beside it), else it."""
    histories = list(histories)
    base = metric.removeprefix("val_")
    if all(base in history for history in histories):
        return base
    if all(metric in history for history in histories):
        return metric
    return next(iter(histories[0]))


def _varying(study: optuna.Study) -> set[str]:
    """The tracked values that differ between the study's trials that hold them (the searched ones).

    A value only some optimizers have (β1, Adam's ``bias_correction``) and
    that is the same wherever it is set sets no trial apart: left out.
    """
    seen: dict[str, set[str]] = {}
    for trial in counted_trials(study):
        recorded = trial.user_attrs.get(HYPERPARAMETERS_ATTR)
        for key, value in (recorded.items() if isinstance(recorded, dict) else ()):
            seen.setdefault(key, set()).add(repr(value))
    return {key for key, values in seen.items() if len(values) > 1}


def _epochs_run(member: FigureTrial) -> int:
    if member.history:
        return max(len(values) for values in member.history.values())
    return 0



