"""Studies: a TOML spec, an Optuna study, and every trial tracked in MLflow and TensorBoard.

This package is the only part of gdbench that imports Optuna. A study from
Python: a spec file, :func:`run_study`, then the leaderboard of its trials,
best first (here untracked, four 100-epoch trials of the sigmoid neuron):

    >>> from pathlib import Path
    >>> from gdbench.study import format_leaderboard, leaderboard, load_spec, run_study
    >>> _ = Path("toy.toml").write_text('''
    ... task = "sigmoid_neuron"
    ... optimizers = ["gd", "momentum"]
    ... epochs = 100
    ... trials = 4
    ... [tracking]
    ... mlflow = false
    ... tensorboard = false
    ... ''')
    >>> study = run_study(load_spec("toy.toml"), home="runs", quiet=True)
    >>> rows = leaderboard(study)
    >>> [row["rank"] for row in rows], sorted({row["optimizer"] for row in rows})
    ([1, 2, 3, 4], ['gd', 'momentum'])
    >>> rows[0]["value"] == study.best_value
    True
    >>> print(format_leaderboard(rows, limit=2))  # doctest: +ELLIPSIS
    rank  trial  state     value ...
    ...
    1     ...    COMPLETE  ...
    2     ...    COMPLETE  ...
    ... 2 more in leaderboard.csv

Subpackages, by job, each depending only on those below it (``docs/architecture.md``):

| where                 | what it holds                                                          |
|-----------------------|------------------------------------------------------------------------|
| `runner`, `worker`    | `run_study` on this machine; `create_study`, `run_worker` for workers   |
| `report/`             | the leaderboard, Optuna's plots, the figures and report files           |
| `compare/`            | what finished studies say: confirm over seeds, budgets, profiles,       |
|                       | the protocol note, statistics                                          |
| `trials/`             | running and keeping trials: session, storage, heartbeats and claiming,  |
|                       | the one trial loop, populations, outcomes, records                     |
| `plan/`               | from a spec to trials: the TOML reader, build, samplers, branches,      |
|                       | inclusions                                                             |
| `spec/`               | what a study is: the spec's dataclasses, domains, spaces, objectives    |
| `keys`, `errors`,     | attribute keys, tags and reasons; the errors users can fix; default     |
| `defaults`            | locations                                                              |

Names are loaded when first used, so that a command that needs none of them
(``gdbench --help``) does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Interrupted", "Locations", "ObjectiveSpec", "OptimizerSpec", "PrunerSpec", "PruningCallback",
    "SamplerSpec", "ScheduleSpec", "SpecError", "StudyError", "StudySpec", "TaskSpec",
    "TrackingSpec", "TrialSetup", "format_leaderboard", "leaderboard", "load_spec", "load_specs",
    "locations", "run_study", "spaces", "study_names", "write_report",
]

_HOMES = {
    "Interrupted": "errors", "SpecError": "errors", "StudyError": "errors",
    "Locations": "trials.session", "locations": "trials.session",
    "ObjectiveSpec": "spec.model", "OptimizerSpec": "spec.model", "PrunerSpec": "spec.model",
    "SamplerSpec": "spec.model", "ScheduleSpec": "spec.model", "StudySpec": "spec.model",
    "TaskSpec": "spec.model", "TrackingSpec": "spec.model",
    "load_spec": "plan.loading", "load_specs": "plan.loading",
    "PruningCallback": "trials.pruning", "TrialSetup": "plan.build", "run_study": "runner",
    "format_leaderboard": "report.leaderboard", "leaderboard": "report.leaderboard",
    "write_report": "report.leaderboard", "study_names": "plan.tables",
}


def __getattr__(name: str) -> Any:
    if name == "spaces":
        return importlib.import_module("gdbench.study.spec.spaces")
    if name in _HOMES:
        return getattr(importlib.import_module(f"gdbench.study.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
