"""A batch of whole runs written in one transaction reads back as MLflow's client writes it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient

from gdbench.tracking._journal import Journal, JournalFile, write_whole_run
from gdbench.tracking._run_rows import write_runs

import servers

#: The columns that differ between two writes of one run: its id, and its end (now).
VARYING = {"run_uuid", "end_time", "artifact_uri"}


def entry(experiment_id: str, number: int, **changes: object) -> dict:
    metrics = [["loss", 1.0, 1000, 0], ["loss", math.nan, 1000, 1], ["loss", math.inf, 1000, 2],
               ["loss", 0.5, 1000, 2], ["loss", -math.inf, 1001, 3], ["accuracy", 0.3, 1000, 0],
               ["accuracy", 0.3, 1000, 0], ["accuracy", math.nan, 1000, 5],
               ["accuracy", math.nan, 1000, 5], ["objective", 0.25 * number, 1000, 9]]
    return {"experiment_id": experiment_id, "run_name": f"trial-{number}",
            "start_time": 1000 + number, "status": "FINISHED",
            "tags": {"gdbench.trial": str(number), "mlflow.user": "someone"},
            "params": {"learning_rate": str(0.1 * (number + 1)), "optimizer": "adam"},
            "metrics": metrics, **changes}


def rows(uri: str, run_id: str) -> dict[str, list[tuple]]:
    """Every row of the run in MLflow's tables, without the columns that vary."""
    engine = sqlalchemy.create_engine(uri)
    found = {}
    with engine.connect() as connection:
        for table in ("runs", "tags", "params", "metrics", "latest_metrics"):
            result = connection.execute(
                sqlalchemy.text(f"SELECT * FROM {table} WHERE run_uuid = :id"), {"id": run_id})
            columns = [name for name in result.keys() if name not in VARYING]
            found[table] = sorted(tuple(row._mapping[name] for name in columns)
                                  for row in result)
    engine.dispose()
    return found


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, MlflowClient, str]:
    """A tracking store (SQLite in the test's folder; the PostgreSQL database of the session's
    MLflow server), its client and a new experiment."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    else:
        uri = servers.shared_stack(request).postgres_url.rsplit("/", 1)[0] + "/mlflow"
    client = MlflowClient(uri)
    return uri, client, client.create_experiment(f"runs-{tmp_path.name}",
                                                 (tmp_path / "art").as_uri())


def test_runs_written_together_hold_the_rows_the_client_writes(store) -> None:
    uri, client, experiment = store
    entries = [entry(experiment, number) for number in range(3)]
    alone = [write_whole_run(client, item) for item in entries]
    commits = []

    def count(connection: sqlalchemy.Connection) -> None:
        commits.append(connection)

    sqlalchemy.event.listen(sqlalchemy.Engine, "commit", count)
    try:
        together = write_runs(client, uri, entries)
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "commit", count)

    assert len(commits) == 1  # the three runs in one transaction

    assert len(set(together)) == 3 and not set(together) & set(alone)
    for one, other in zip(alone, together):
        assert rows(uri, other) == rows(uri, one)
        read = client.get_run(other)
        assert read.info.artifact_uri == client.get_run(one).info.artifact_uri.replace(one, other)
        assert read.info.end_time >= read.info.start_time
        history = [(m.step, m.value) for m in client.get_metric_history(other, "loss")]
        assert history[:1] == [(0, 1.0)] and math.isnan(history[1][1])
        assert read.data.metrics["loss"] == -1.7976931348623157e308  # -inf, at the last step
    assert sorted(run.info.run_name for run in client.search_runs([experiment])) == sorted(
        [f"trial-{number}" for number in range(3)] * 2)


def test_a_run_beyond_mlflows_limits_goes_through_the_client(store) -> None:
    uri, client, experiment = store
    long_value = entry(experiment, 1, params={"note": "x" * 6001})
    ids = write_runs(client, uri, [entry(experiment, 0), long_value])
    # Truncated to MLflow's limit, with its warning, as the client writes it.
    assert client.get_run(ids[1]).data.params == {"note": "x" * 6000}
    assert client.get_run(ids[0]).data.params["optimizer"] == "adam"


def test_a_transaction_that_fails_writes_each_run_once_through_the_client(
        store, tmp_path: Path) -> None:
    uri, client, experiment = store
    failures = []

    def fail_latest(connection, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO LATEST_METRICS") and not failures:
            failures.append(statement)
            raise sqlalchemy.exc.OperationalError(statement, parameters, Exception("disk I/O"))

    journal = Journal(tmp_path / "journal")
    entries = [entry(experiment, number) for number in range(4)]
    file = journal.write_batch(entries)
    sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", fail_latest)
    try:
        ids = write_runs(client, uri, entries, file)
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "before_cursor_execute", fail_latest)

    assert failures  # the one transaction failed after inserting runs, tags, metrics
    runs = client.search_runs([experiment])
    assert sorted(run.info.run_id for run in runs) == sorted(ids)
    assert sorted(run.info.run_name for run in runs) == [f"trial-{n}" for n in range(4)]
    assert all(rows(uri, run_id)["latest_metrics"] for run_id in ids)
    assert isinstance(file, JournalFile) and not file.path.exists()  # every run told


def test_a_deleted_experiment_is_refused_as_the_client_refuses_it(store) -> None:
    uri, client, experiment = store
    client.delete_experiment(experiment)
    with pytest.raises(Exception, match="active|deleted"):
        write_runs(client, uri, [entry(experiment, 0)])
    engine = sqlalchemy.create_engine(uri)
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text(
            "SELECT COUNT(*) FROM runs WHERE experiment_id = :id"), {"id": int(experiment)}
        ).scalar() == 0
    engine.dispose()
