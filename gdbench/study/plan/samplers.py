"""Optuna's samplers and pruners by the names a spec gives them.

| sampler  | Optuna class       | needs (``pip install gdbench[EXTRA]``) |
|----------|--------------------|----------------------------------------|
| `tpe`    | `TPESampler` (1)   |                                        |
| `random` | `RandomSampler`    |                                        |
| `grid`   | `GridSampler`      |                                        |
| `cmaes`  | `CmaEsSampler`     | `cmaes`: the `cmaes` package           |
| `gp`     | `GPSampler`        | `gp`: `torch` and `scipy`              |

(1) as :class:`~gdbench.study.plan.fitted_tpe.FittedTPESampler`: the same draws, its fit on
the finished trials made once for all the trials asked before the next one finishes.

Pruners: `median`, `successive_halving`, `hyperband`, `none`.

This module imports neither Keras nor TensorFlow (``gdbench list`` reads it).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from gdbench.study.errors import StudyError
from gdbench.study.plan.branches import BranchSampler
from gdbench.study.plan.fitted_tpe import FittedTPESampler

if TYPE_CHECKING:
    from gdbench.study.spec.model import StudySpec

__all__ = [
    "DRAWN_AHEAD", "PREPARE_FREE", "PRUNERS", "SAMPLERS", "SAMPLER_EXTRAS", "DrawnTrial",
    "as_optuna_trial", "ask", "capped_budget", "make_pruner", "make_sampler", "missing_modules",
    "sampler_unavailable",
]

#: Sampler name → Optuna class.
SAMPLERS: Mapping[str, type[optuna.samplers.BaseSampler]] = MappingProxyType({
    "tpe": FittedTPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
})

#: Sampler name → (the gdbench extra that installs what it needs beyond Optuna, the
#: modules Optuna imports for it), for the samplers that need more than Optuna.
SAMPLER_EXTRAS: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType({
    "cmaes": ("cmaes", ("cmaes",)),
    "gp": ("gp", ("torch", "scipy")),
})


def missing_modules(name: str) -> list[str]:
    """The modules sampler ``name`` needs that are not installed here.

    Optuna imports them only when the sampler first samples, so they are
    looked for here, not imported.
    """
    _, modules = SAMPLER_EXTRAS.get(name, (None, ()))
    return [module for module in modules if importlib.util.find_spec(module) is None]


def sampler_unavailable(name: str) -> str | None:
    """Why sampler ``name`` cannot run here, in one line naming its extra; ``None`` if it can."""
    missing = missing_modules(name)
    if not missing:
        return None
    ready = ", ".join(other for other in SAMPLERS if other not in SAMPLER_EXTRAS)
    return (f"the {name} sampler needs {' and '.join(missing)}, not installed: "
            f"pip install gdbench[{SAMPLER_EXTRAS[name][0]}] (or use {ready})")


#: The samplers that prepare nothing when a trial is asked (their ``before_trial`` does
#: nothing), so that a batch's trials can be created without asking for each.
PREPARE_FREE = frozenset({"random", "tpe"})

#: Seed offset between the samplers of two branches of a balanced comparison (the
#: processes sharing a study offset theirs by 1, 2, ...).
BRANCH_SEED_STRIDE = 1000

#: The samplers whose draws owe nothing to the study's trials: a population batch's
#: trials are drawn ahead and created with their parameters in one transaction.
DRAWN_AHEAD = frozenset({"random"})

#: Pruner name → Optuna class.
PRUNERS: Mapping[str, type[optuna.pruners.BasePruner]] = MappingProxyType({
    "median": optuna.pruners.MedianPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "none": optuna.pruners.NopPruner,
})


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, less its ``study.stop()`` once the grid is covered.

    That call is meant for ``study.optimize`` and raises under ask-and-tell;
    the budget is capped at the grid's size instead (:func:`capped_budget`).
    """

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        del study, trial, state, values


def make_sampler(spec: StudySpec, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler, its seed offset (several processes on one study sample apart).

    Args:
        spec: the study spec.
        seed_offset: added to the sampler's seed.

    Raises:
        StudyError: the sampler's extra is not installed.
    """
    from gdbench.study.plan import build  # keeps TensorFlow out of start-up

    reason = sampler_unavailable(spec.sampler.name)
    if reason is not None:
        raise StudyError(f"sampler: {reason}")
    seed = spec.sampler.seed + seed_offset
    if spec.sampler.name == "grid":
        return _GridSampler(build.parameter_grid(spec), seed=seed)
    options = dict(spec.sampler.options)
    keys = [key for key, compared in (("optimizer", spec.compares_optimizers),
                                      ("schedule", spec.compares_schedules)) if compared]

    def sampler(offset: int = 0) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return SAMPLERS[spec.sampler.name](seed=seed + offset, **options)

    if keys and spec.balance and spec.sampler.name != "random":
        # Each trial's branch is fixed: one sampler per branch, on that branch's trials
        # (the branches' keywords share names: η of GD and of Adam are `learning_rate`).
        return BranchSampler(keys, lambda index: sampler(BRANCH_SEED_STRIDE * index))
    if keys and spec.sampler.name == "tpe":
        # TPE chooses the branch too: it models the choice and the values of its branch
        # together, as Optuna advises for such conditional spaces.
        options.setdefault("multivariate", True)
        if options["multivariate"]:
            options.setdefault("group", True)
    return sampler()


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The spec's pruner."""
    return PRUNERS[spec.pruner.name](**spec.pruner.options)


def capped_budget(spec: StudySpec, budget: int) -> int:
    """The grid sampler has no more points than its grid; other samplers are not capped."""
    if spec.sampler.name != "grid":
        return budget
    from gdbench.study.plan import build  # keeps TensorFlow out of start-up

    size = math.prod(len(values) for values in build.parameter_grid(spec).values())
    return min(budget, size)
