"""Whole runs written to a database tracking store many at a time, in one transaction.

MLflow's client writes a finished run in three transactions (create it, one
``log_batch``, terminate it), each reading the run back: about 13 ms of CPU a
run on SQLite, most of a tracked toy trial's cost. A batch of finished trials
is known whole (tags, parameters, metrics, status), so on a database store
(``sqlite:``, ``postgresql:``, ``mysql:``, ``mssql:``) :func:`write_runs` inserts
their rows into MLflow's own tables, through MLflow's own SQLAlchemy models,
in one transaction: the rows MLflow's client writes for the same run (the run,
its tags with ``mlflow.runName``, parameters, every metric point without
duplicates, NaN and infinities stored as MLflow stores them, and each key's
latest value), which the tests compare row for row with the client's.

Anything else goes through the client, a run at a time
(:func:`~gdbench.tracking._journal.write_whole_run`): a tracking server, a run
whose keys or values exceed MLflow's limits (the client says which), an
experiment that is no longer active, and a batch whose transaction failed
(rolled back whole, so no run is written twice).
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy
from mlflow.entities import LifecycleStage, SourceType
from mlflow.store.db.db_types import DATABASE_ENGINES
from mlflow.store.tracking.dbmodels.models import (
    SqlExperiment,
    SqlLatestMetric,
    SqlMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
from mlflow.utils.uri import append_to_uri_path
from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_PARAM_VAL_LENGTH,
    MAX_TAG_VAL_LENGTH,
)

from gdbench.tracking._journal import JournalFile, write_whole_run
from gdbench.tracking._mlflow_context import now_ms

__all__ = ["write_runs"]

_logger = logging.getLogger(__name__)

#: The folder of a run's artifacts under its experiment's artifact location (MLflow's).
_ARTIFACTS_FOLDER = "artifacts"
#: What MLflow's SQL store writes for ±∞ (SQL has no infinities).
_FLOAT_MAX = 1.7976931348623157e308

_engines: dict[str, sqlalchemy.Engine] = {}
_engines_lock = threading.Lock()


def write_runs(client: MlflowClient, tracking_uri: str, entries: Sequence[dict[str, Any]],
               file: JournalFile | None = None) -> list[str]:
    """Write whole runs now, in one transaction where the store allows it; their ids.

    Each entry is what :func:`~gdbench.tracking._journal.write_whole_run` takes;
    its journal ``file``, where there is one, is told of each run written.
    """
    together = [entry for entry in entries if _fits(entry)] if _is_database(tracking_uri) else []
    ids: dict[int, str] = {}
    if together:
        try:
            written = _insert(_engine(tracking_uri), together)
        except sqlalchemy.exc.SQLAlchemyError as error:
            _logger.debug("writing %d runs in one transaction failed (%s); one at a time",
                          len(together), error)
        else:
            for entry, run_id in zip(together, written):
                ids[id(entry)] = run_id
                if file is not None:
                    file.written()
    for entry in entries:
        if id(entry) not in ids:
            ids[id(entry)] = write_whole_run(client, entry, file)
    return [ids[id(entry)] for entry in entries]


def _is_database(tracking_uri: str) -> bool:
    scheme = tracking_uri.partition(":")[0].partition("+")[0]
    return scheme in DATABASE_ENGINES


def _engine(tracking_uri: str) -> sqlalchemy.Engine:
    """An engine holding no connection between transactions (nothing to close)."""
    with _engines_lock:
        if tracking_uri not in _engines:
            _engines[tracking_uri] = sqlalchemy.create_engine(
                tracking_uri, poolclass=sqlalchemy.pool.NullPool)
        return _engines[tracking_uri]


def _fits(entry: dict[str, Any]) -> bool:
    """Whether every key and value is within MLflow's limits (the client refuses the rest)."""
    keys = [*entry["tags"], *entry["params"], *(metric[0] for metric in entry["metrics"])]
    return (all(len(key) <= MAX_ENTITY_KEY_LENGTH for key in keys)
            and all(len(value) <= MAX_PARAM_VAL_LENGTH for value in entry["params"].values())
            and all(len(value) <= MAX_TAG_VAL_LENGTH for value in entry["tags"].values()))


def _insert(engine: sqlalchemy.Engine, entries: Sequence[dict[str, Any]]) -> list[str]:
    """Insert the entries' rows in one transaction; their run ids.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the transaction failed (nothing was written), or an
            entry's experiment is missing or not active.
    """
    experiment_ids = sorted({int(entry["experiment_id"]) for entry in entries})
    end_time = now_ms()
    rows: dict[Any, list[dict[str, Any]]] = {
        SqlRun: [], SqlTag: [], SqlParam: [], SqlMetric: [], SqlLatestMetric: []}
    run_ids = []
    with engine.begin() as connection:
        locations = dict(connection.execute(
            sqlalchemy.select(SqlExperiment.experiment_id, SqlExperiment.artifact_location)
            .where(SqlExperiment.experiment_id.in_(experiment_ids),
                   SqlExperiment.lifecycle_stage == LifecycleStage.ACTIVE)).all())
        if len(locations) != len(experiment_ids):
            raise sqlalchemy.exc.NoResultFound(
                f"experiments {experiment_ids}: not all of them exist and are active")
        for entry in entries:
            run_id = uuid.uuid4().hex
            run_ids.append(run_id)
            _add_rows(rows, entry, run_id, locations[int(entry["experiment_id"])], end_time)
        for model, values in rows.items():
            if values:
                connection.execute(sqlalchemy.insert(model), values)
    return run_ids


def _add_rows(rows: dict[Any, list[dict[str, Any]]], entry: dict[str, Any], run_id: str,
              artifact_location: str, end_time: int) -> None:
    """The rows MLflow's client writes for ``entry`` (create, ``log_batch``, terminate)."""
    tags = dict(entry["tags"])
    tags.setdefault(MLFLOW_RUN_NAME, entry["run_name"])
    rows[SqlRun].append({
        "run_uuid": run_id, "name": tags[MLFLOW_RUN_NAME],
        "artifact_uri": append_to_uri_path(artifact_location, run_id, _ARTIFACTS_FOLDER),
        "experiment_id": int(entry["experiment_id"]),
        "source_type": SourceType.to_string(SourceType.UNKNOWN), "source_name": "",
        "entry_point_name": "", "user_id": tags.get(MLFLOW_USER, "unknown"),
        "status": entry["status"], "start_time": entry["start_time"], "end_time": end_time,
        "deleted_time": None, "source_version": "", "lifecycle_stage": LifecycleStage.ACTIVE,
    })
    rows[SqlTag].extend({"run_uuid": run_id, "key": key, "value": value}
                        for key, value in tags.items())
    rows[SqlParam].extend({"run_uuid": run_id, "key": key, "value": value}
                          for key, value in entry["params"].items())
    latest: dict[str, dict[str, Any]] = {}
    seen = set()
    for key, value, timestamp, step in entry["metrics"]:
        is_nan = math.isnan(value)
        stored = 0.0 if is_nan else max(-_FLOAT_MAX, min(_FLOAT_MAX, value))
        if (key, stored, is_nan, timestamp, step) in seen:  # MLflow keeps one of each
            continue
        seen.add((key, stored, is_nan, timestamp, step))
        row = {"run_uuid": run_id, "key": key, "value": stored, "timestamp": timestamp,
               "step": step, "is_nan": is_nan}
        rows[SqlMetric].append(row)
        # MLflow's latest value: the greatest (step, timestamp, value), as stored.
        held = latest.get(key)
        if held is None or ((step, timestamp, stored) > (held["step"], held["timestamp"],
                                                           held["value"])):
            latest[key] = row
    rows[SqlLatestMetric].extend(latest.values())
