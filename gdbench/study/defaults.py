"""The defaults a user sees in every command's help, kept where the command line reads them cheaply."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DEFAULT_GRACE_PERIOD_S", "DEFAULT_HEARTBEAT_INTERVAL_S", "DEFAULT_HOME", "MLFLOW_FILE",
    "JOURNAL_FOLDER", "OPTUNA_FILE", "REPORTS_FOLDER", "TENSORBOARD_FOLDER",
]

#: The folder of a study's databases, logs and reports, relative to the working directory.
DEFAULT_HOME = Path("runs")

#: Seconds between two heartbeats of a running trial.
DEFAULT_HEARTBEAT_INTERVAL_S = 5

#: Seconds without a heartbeat after which a running trial is taken for dead:
#: several missed heartbeats, so that a busy storage is not mistaken for a death.
DEFAULT_GRACE_PERIOD_S = 30

#: What a study keeps under HOME by default: the Optuna storage, the MLflow store (its
#: artifacts in ``mlartifacts/`` beside it), the TensorBoard logs, the reports, and the
#: journal of finished trials' MLflow runs not yet written (:mod:`gdbench.tracking._journal`).
OPTUNA_FILE = "optuna.db"
MLFLOW_FILE = "mlflow.db"
TENSORBOARD_FOLDER = "tensorboard"
REPORTS_FOLDER = "reports"
JOURNAL_FOLDER = "tracking-journal"
