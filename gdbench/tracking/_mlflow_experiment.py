"""A study's MLflow experiment: found or created, the tags that mark its runs, its parameters.

The tags here tell a study's runs apart in an experiment (:data:`STUDY_TAG`,
:data:`ROLE_TAG`, :data:`TRIAL_NUMBER_TAG`); :class:`~gdbench.tracking._mlflow.MlflowStudy`
writes them and :mod:`gdbench.tracking.readback` reads them.
"""

from __future__ import annotations

import warnings
from typing import Mapping

from mlflow.entities import Param, Run
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient

from gdbench.tracking.artifacts import HOME_ARTIFACT_LOCATION, sqlite_database

__all__ = [
    "DESCRIPTION_TAG",
    "ROLE_TAG",
    "STUDY_TAG",
    "TRIAL_NUMBER_TAG",
    "default_artifact_location",
    "get_or_create_experiment",
    "params_to_add",
]

STUDY_TAG = "gdbench.study"
ROLE_TAG = "gdbench.role"
TRIAL_NUMBER_TAG = "gdbench.trial_number"

#: The experiment tag MLflow's UI shows as the experiment's description.
DESCRIPTION_TAG = "mlflow.note.content"


def default_artifact_location(tracking_uri: str) -> str | None:
    """``mlflow-artifacts:/`` for a SQLite store, else ``None`` (the server's choice).

    The runs' artifacts then lie in ``mlartifacts/`` beside the database,
    under locations relative to it: a copy of the folder serves its own
    files. MLflow's own default for a database store is ``./mlruns`` relative
    to the current directory, as an absolute path, which scatters artifacts
    wherever a study is started.
    """
    return None if sqlite_database(tracking_uri) is None else HOME_ARTIFACT_LOCATION


def get_or_create_experiment(client: MlflowClient, experiment_name: str | None,
                             nested_in: str | None,
                             artifact_location: str | None) -> tuple[str, str]:
    """The id and name of the study's experiment, created when there is none.

    Without ``experiment_name``, the experiment of the run ``nested_in``.
    """
    if experiment_name is None:
        experiment_id = client.get_run(nested_in).info.experiment_id
        experiment_name = client.get_experiment(experiment_id).name
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        try:
            return client.create_experiment(
                experiment_name, artifact_location=artifact_location
            ), experiment_name
        except MlflowException as error:
            if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
        # Another worker created it between our look-up and our creation.
        experiment = client.get_experiment_by_name(experiment_name)
    if experiment.lifecycle_stage != "active":
        raise ValueError(
            f"experiment_name: the MLflow experiment {experiment_name!r} is deleted; "
            "restore it (mlflow experiments restore) or delete it for good (mlflow gc), "
            "or choose another experiment_name"
        )
    return experiment.experiment_id, experiment_name


def params_to_add(parent: Run, params: Mapping[str, object], study_name: str) -> list[Param]:
    """The study parameters the parent run does not hold yet.

    MLflow refuses to change a logged parameter: a resumed study whose
    parameter differs keeps the first value, and a warning says so.
    """
    logged = parent.data.params
    to_add = []
    for key, value in params.items():
        if key not in logged:
            to_add.append(Param(key, str(value)))
        elif logged[key] != str(value):
            warnings.warn(
                f"study parameter {key!r}: the parent run of study {study_name!r} "
                f"keeps its first value {logged[key]!r}, not {str(value)!r}",
                stacklevel=3,
            )
    return to_add
