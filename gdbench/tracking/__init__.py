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

In MLflow the study is an experiment (named after the study, described by
the spec's ``description``) with one parent run (tags ``gdbench.study``,
``gdbench.role=parent``; the spec file as artifact ``spec.toml``; lasting the
study's working time, metric ``working_time_s``) and one child run per trial,
named after what sets it apart (:meth:`StudyTracker.run_name`:
``adam · η=0.0216 β1=0.7 · #6``), tags ``mlflow.parentRunId``,
``gdbench.trial_number``, ``gdbench.state``, ``gdbench.reason``. Every run
carries MLflow's system tags (``mlflow.user``, ``mlflow.source.name``: the
spec file, ``mlflow.source.type``) and ``gdbench.version``. A SQLite store
keeps artifacts in ``mlartifacts/`` beside it, under ``mlflow-artifacts:/``
locations relative to it, so that a copied HOME serves its own files
(:mod:`gdbench.tracking.artifacts`). In TensorBoard it is a log directory
with one run directory per trial, named as its MLflow run
(``adam · η=0.0216 · #7``); the folder holding the studies' log directories
gets the HParams config of them all, every session carrying ``study``.
What the dashboards open on (the experiment's kind, each study's saved view of
its trials, the runs' colours, the links to them) is
:mod:`gdbench.tracking.dashboards`.
"""

from __future__ import annotations

from typing import Any

from gdbench.tracking._domain import DOMAIN_KINDS, HParamDomain, HParamValue
from gdbench.tracking._journal import restore_runs
from gdbench.tracking._server import check_tracking_server
from gdbench.tracking.artifacts import local_artifact_folder
from gdbench.tracking._recorded_trials import MLFLOW_CURVE_POINTS, curve_steps
from gdbench.tracking.tracker import STUDY_STATUSES, StudyTracker
from gdbench.tracking.trial_tracker import OBJECTIVE_METRIC, TRIAL_STATES, TrialTracker

__all__ = [
    "DOMAIN_KINDS",
    "MLFLOW_CURVE_POINTS",
    "OBJECTIVE_METRIC",
    "STUDY_STATUSES",
    "TRIAL_STATES",
    "HParamDomain",
    "HParamValue",
    "StoredStudy",
    "StudyTracker",
    "TrackingCallback",
    "TrialTracker",
    "check_tracking_server",
    "curve_steps",
    "local_artifact_folder",
    "restore_runs",
]


def __getattr__(name: str) -> Any:
    # The Keras callback imports TensorFlow (seconds); load it only when asked for.
    if name == "TrackingCallback":
        from gdbench.tracking.keras_callback import TrackingCallback

        return TrackingCallback
    # Reading a study back imports MLflow (seconds); likewise.
    if name == "StoredStudy":
        from gdbench.tracking.readback import StoredStudy

        return StoredStudy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
