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

Modules, by job:

| module           | what it holds                                                              |
|------------------|----------------------------------------------------------------------------|
| `spec`           | the frozen dataclasses of a spec (`_reader` turns TOML into them)          |
| `domains`        | search-space domains: suggest, bounds, grid, describe, nominal, HParams    |
| `spaces`         | the default search space of every optimizer and schedule                   |
| `build`          | a trial's optimizer and schedule from a spec and its hyperparameters       |
| `samplers`       | Optuna's samplers and pruners by name; asking for (balanced) trials        |
| `session`        | locations under HOME, attribute keys, reasons, opening study and trackers  |
| `storage`        | RDB storage, heartbeats, the claim lock, retries of interrupted trials     |
| `loop`           | the one trial loop, used alike by `run` and `worker`                       |
| `batches`        | a batch's trials grouped into populations for the population engines       |
| `image_batches`  | an image population's members tracked, pruned and told epoch by epoch      |
| `records`        | a batch's results written to Optuna in one transaction                     |
| `figures`        | the best trials' figures, drawn once the trials are done                   |
| `confirm`        | each optimizer's best rerun over seeds (`confirm_target`: which, how)      |
| `stats`          | mean, standard deviation and bootstrap interval over seeds                 |
| `runner`         | `run_study`: a study on this machine                                       |
| `worker`         | `create_study`, `run_worker`: a study shared by workers                    |
| `report`         | leaderboard and figures from stored results                                |
| `confirm_report` | the leaderboard over seeds, `confirmed.csv` and its figures                |
| `budgets`        | budget-matched comparisons: defaults first, the best after each budget     |
| `inclusions`     | which optimizer contains which; warnings for spaces that break it          |
| `protocol`       | the protocol note of a comparison (spaces, budgets, seeds, selection)      |
| `objectives`     | a trial value: its last epoch metric, or the time to reach a target        |
| `profiles`       | performance profiles and their areas over several studies                  |

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
    "Locations": "session", "locations": "session",
    "ObjectiveSpec": "spec", "OptimizerSpec": "spec", "PrunerSpec": "spec",
    "SamplerSpec": "spec", "ScheduleSpec": "spec", "StudySpec": "spec", "TaskSpec": "spec",
    "TrackingSpec": "spec", "load_spec": "spec", "load_specs": "spec",
    "PruningCallback": "loop", "TrialSetup": "build", "run_study": "runner",
    "format_leaderboard": "report", "leaderboard": "report", "write_report": "report",
    "study_names": "_tables",
}


def __getattr__(name: str) -> Any:
    if name == "spaces":
        return importlib.import_module("gdbench.study.spaces")
    if name in _HOMES:
        return getattr(importlib.import_module(f"gdbench.study.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
