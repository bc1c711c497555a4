"""Tracking of studies: every trial is one MLflow run and one TensorBoard HParams session.

This package is the only part of gdbench that talks to MLflow and TensorBoard.
It does not know Optuna: the study layer hands it plain values.

    >>> from gdbench.tracking import HParamDomain, StudyTracker
    >>> learning_rate = HParamDomain("float", 1e-4, 1e-1, log=True)
    >>> with StudyTracker(study_name="adam-digits", tracking_uri="sqlite:///mlflow.db",
    ...                   tensorboard_dir="runs/adam-digits") as study:
    ...     study.start(hparam_domains={"learning_rate": learning_rate},
    ...                 metrics=["loss", "val_loss"])
    ...     with study.start_trial(0, {"learning_rate": 1e-3}) as trial:
    ...         trial.log_epoch(0, {"loss": 0.9, "val_loss": 1.0})
    ...         trial.finish("COMPLETE", value=1.0)

In MLflow the study is an experiment (named after the study) with one parent
run (tags ``gdbench.study``, ``gdbench.role=parent``) and one child run per
trial (``trial-<n>``, tags ``mlflow.parentRunId``, ``gdbench.trial_number``,
``gdbench.state``, ``gdbench.reason``). In TensorBoard it is a log directory
with one run directory per trial, named as its MLflow run
(``adam · η=0.0216 · #7``); the folder holding the studies' log directories
gets the HParams config of them all, every session carrying ``study``.
"""

from __future__ import annotations

from typing import Any

from gdbench.tracking._domain import DOMAIN_KINDS, HParamDomain, HParamValue
from gdbench.tracking._server import check_tracking_server
from gdbench.tracking.tracker import (
    MLFLOW_CURVE_POINTS,
    OBJECTIVE_METRIC,
    STUDY_STATUSES,
    TRIAL_STATES,
    StudyTracker,
    TrialTracker,
    curve_steps,
)

__all__ = [
    "DOMAIN_KINDS",
    "HParamDomain",
    "HParamValue",
    "MLFLOW_CURVE_POINTS",
    "OBJECTIVE_METRIC",
    "STUDY_STATUSES",
    "StudyTracker",
    "TRIAL_STATES",
    "TrackingCallback",
    "TrialTracker",
    "check_tracking_server",
    "curve_steps",
]


def __getattr__(name: str) -> Any:
    # The Keras callback imports TensorFlow (seconds); load it only when asked for.
    if name == "TrackingCallback":
        from gdbench.tracking.keras_callback import TrackingCallback

        return TrackingCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
