"""Where a study's MLflow artifacts lie, in a way that survives moving HOME.

An experiment that gdbench creates in a SQLite store has the artifact location
``mlflow-artifacts:/``: its runs' artifacts are ``mlflow-artifacts:/<run
id>/artifacts``, a path relative to the ``mlartifacts/`` folder beside the
database, not an absolute ``file:///…`` path. A copied or moved HOME then
holds, and serves, its own files:

- gdbench writes them into that folder itself (MLflow's client resolves a
  ``mlflow-artifacts:`` location only through a tracking server);
- ``gdbench ui`` serves them: its ``mlflow server`` gets the folder as
  ``--artifacts-destination``;
- a program reads them through that server
  (``MlflowClient("http://127.0.0.1:5000").download_artifacts(…)``), or on
  disk, in :func:`local_artifact_folder`.

Stores written by earlier versions hold absolute locations; those are left to
MLflow's client, as before.

This module does not import MLflow.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

__all__ = ["ARTIFACTS_FOLDER", "CURVES_FOLDER", "HOME_ARTIFACT_LOCATION", "local_artifact_folder",
           "local_artifact_root", "sqlite_database"]

#: The parent run's folder of population curves (:meth:`StudyTracker.log_curves`).
CURVES_FOLDER = "curves"

#: The artifact location of an experiment gdbench creates in a SQLite store.
HOME_ARTIFACT_LOCATION = "mlflow-artifacts:/"

#: The folder beside a SQLite database that holds its artifacts.
ARTIFACTS_FOLDER = "mlartifacts"

_SCHEME = "mlflow-artifacts:"


def sqlite_database(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI, else ``None``."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix) or tracking_uri[len(prefix):] in ("", ":memory:"):
        return None
    return Path(tracking_uri[len(prefix):]).resolve()


def local_artifact_root(tracking_uri: str) -> Path | None:
    """The folder of a SQLite store's ``mlflow-artifacts:/`` locations, ``mlartifacts/`` beside
    the database; ``None`` for another store."""
    database = sqlite_database(tracking_uri)
    return None if database is None else database.parent / ARTIFACTS_FOLDER


def local_artifact_folder(tracking_uri: str, artifact_uri: str) -> Path | None:
    """The folder holding a run's artifacts, for a run of a SQLite store.

    Args:
        tracking_uri: the store's ``sqlite:///…`` URI.
        artifact_uri: the run's ``run.info.artifact_uri``.

    Returns:
        ``<folder of the database>/mlartifacts/<run id>/artifacts`` for a
        ``mlflow-artifacts:`` location; ``None`` where MLflow's client resolves
        the location itself (an absolute location, another store).

    Raises:
        ValueError: a location leading out of ``mlartifacts/``.
    """
    root = local_artifact_root(tracking_uri)
    if root is None or not artifact_uri.startswith(_SCHEME):
        return None
    folder = (root / urlparse(artifact_uri).path.lstrip("/")).resolve()
    if not folder.is_relative_to(root.resolve()):
        raise ValueError(f"artifact_uri: {artifact_uri!r} leads out of {root}")
    return folder
