"""A read-only HOME (a read-only bind mount) can be reported and viewed: real processes."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from test_dashboards import free_port_base

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

SPEC = """
name = "archived"
task = "sigmoid_neuron"
optimizer = "gd"
epochs = 5
trials = 2
"""


@contextlib.contextmanager
def read_only_view(source: Path, view: Path) -> Iterator[Path]:
    """``source`` seen read only at ``view`` (a read-only bind mount); skips where not permitted."""
    view.mkdir()
    bound = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"a bind mount is not permitted here: {bound.stderr.decode().strip()}")
    try:
        remounted = subprocess.run(["mount", "-o", "remount,bind,ro", str(view)],
                                   capture_output=True)
        if remounted.returncode != 0:
            pytest.skip(f"a read-only remount is not permitted here: "
                        f"{remounted.stderr.decode().strip()}")
        yield view
    finally:
        subprocess.run(["umount", "--lazy", str(view)], check=True)


def gdbench(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdbench", *arguments], capture_output=True,
                          text=True, env=servers.worker_environment(), timeout=timeout)


@pytest.mark.slow
def test_a_read_only_home_is_reported_and_shown(tmp_path: Path) -> None:
    spec = tmp_path / "archived.toml"
    spec.write_text(SPEC)
    home = tmp_path / "home"
    ran = gdbench("run", str(spec), "--home", str(home), "--quiet")
    assert ran.returncode == 0, ran.stderr
    # As an archive is: the database whole, no WAL files beside it (SQLite needs to create
    # them to read a WAL database, which a read-only folder forbids).
    with contextlib.closing(sqlite3.connect(home / "optuna.db")) as database:
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert not (home / "optuna.db-wal").exists()
    with read_only_view(home, tmp_path / "view") as view:
        assert not (view / "optuna.db-shm").exists()
        report = gdbench("report", "archived", "--home", str(view), "--out",
                         str(tmp_path / "out"))
        assert report.returncode == 0, report.stderr
        assert "COMPLETE" in report.stdout and "read only" in report.stderr
        assert (tmp_path / "out" / "leaderboard.csv").is_file()

        into_home = gdbench("report", "archived", "--home", str(view))
        assert into_home.returncode == 2
        assert into_home.stderr.strip().splitlines() == [
            f"gdbench: error: --out: {view / 'reports' / 'archived'} cannot be written here "
            f"({view / 'reports' / 'archived'} is read only); pass --out DIR to write the "
            "report's files elsewhere"]

        base = free_port_base()
        log = tmp_path / "ui.log"
        ui = servers.start_ui(view, base, log)
        try:
            studies = f"http://127.0.0.1:{base + 2}/api/studies"
            servers.wait_until("optuna-dashboard", lambda: servers.http_ok(studies), ui, log,
                               timeout_s=180)
            assert servers.get_json(studies)["study_summaries"][0]["study_name"] == "archived"
            mlflow = f"http://127.0.0.1:{base}/api/2.0/mlflow"
            servers.wait_until("mlflow", lambda: servers.http_ok(
                f"{mlflow}/experiments/search?max_results=1"), ui, log, timeout_s=180)
            runs = servers.post_json(f"{mlflow}/runs/search",
                                     {"experiment_ids": ["1"], "max_results": 10})
            assert len(runs["runs"]) == 3  # the parent run and two trials
            output = log.read_text()
            assert "cannot be written here: the dashboards' logs go to" in output, output
        finally:
            servers.stop_process(ui, first_signal=signal.SIGINT)
