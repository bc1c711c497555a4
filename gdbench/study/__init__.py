"""Studies: a TOML spec, an Optuna study, and every trial tracked in MLflow and TensorBoard.

This package is the only part of gdbench that imports Optuna.

    >>> from gdbench.study import load_spec, run_study, leaderboard
    >>> spec = load_spec("studies/quickstart.toml")     # doctest: +SKIP
    >>> study = run_study(spec, home="runs")              # doctest: +SKIP
    >>> leaderboard(study)[0]["optimizer"]                # doctest: +SKIP
    'adam'

Modules: :mod:`~gdbench.study.spec` (the spec and its checks),
:mod:`~gdbench.study.spaces` (the default search spaces),
:mod:`~gdbench.study.build` (from suggestions to optimizer and schedule),
:mod:`~gdbench.study.runner` (the loop), :mod:`~gdbench.study.report`, and
:mod:`~gdbench.study.worker` (a study shared by workers on several machines).
"""

from __future__ import annotations

from gdbench.study import spaces
from gdbench.study.build import TrialSetup
from gdbench.study.report import format_leaderboard, leaderboard, write_report
from gdbench.study.runner import Locations, PruningCallback, locations, run_study
from gdbench.study.spec import (
    ObjectiveSpec,
    OptimizerSpec,
    PrunerSpec,
    SamplerSpec,
    ScheduleSpec,
    SpecError,
    StudySpec,
    TaskSpec,
    TrackingSpec,
    load_spec,
    load_specs,
)

__all__ = [
    "Locations",
    "ObjectiveSpec",
    "OptimizerSpec",
    "PrunerSpec",
    "PruningCallback",
    "SamplerSpec",
    "ScheduleSpec",
    "SpecError",
    "StudySpec",
    "TaskSpec",
    "TrackingSpec",
    "TrialSetup",
    "format_leaderboard",
    "leaderboard",
    "load_spec",
    "load_specs",
    "locations",
    "run_study",
    "spaces",
    "write_report",
]
