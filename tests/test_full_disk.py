"""A disk that fills up mid-study gets one line, and the next run recovers: real processes."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import servers
from optuna.trial import TrialState

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

SPEC = """
name = "full"
task = "sigmoid_neuron"
optimizer = "gd"
epochs = 5
trials = 4
"""


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``folder``; skips where mounting one is not permitted."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        # Lazily: this process may still hold a database on it open.
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def gdbench(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdbench", *arguments], capture_output=True,
                          text=True, env=servers.worker_environment(), timeout=600)


def fill(disk: Path, leave_kib: int) -> Path:
    """A file filling ``disk`` but ``leave_kib`` KiB."""
    import shutil

    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as file:
        file.truncate(0)
        file.write(b"\0" * max(0, free - leave_kib * 1024))
    return filler


@pytest.mark.slow
def test_a_full_disk_gets_one_line_and_the_next_run_recovers(tmp_path: Path) -> None:
    spec = tmp_path / "full.toml"
    spec.write_text(SPEC)
    with small_disk(tmp_path / "disk", "20m") as disk:
        home = disk / "home"
        first = gdbench("run", str(spec), "--home", str(home), "--quiet")
        assert first.returncode == 0, first.stderr
        filler = fill(disk, 700)
        full = gdbench("run", str(spec), "--home", str(home), "--quiet", "--trials", "400")
        assert full.returncode == 2, full.stderr
        errors = [line for line in full.stderr.splitlines() if line.startswith("gdbench: error")]
        assert len(errors) == 1, full.stderr
        assert "the disk holding it is full" in errors[0] and str(home) in errors[0]
        assert "Traceback" not in full.stderr and "[SQL:" not in full.stderr, full.stderr
        assert len(full.stderr.splitlines()) <= 3, full.stderr

        filler.unlink()
        rerun = gdbench("run", str(spec), "--home", str(home), "--quiet", "--trials", "100",
                        "--grace-period", "3")
        assert rerun.returncode == 0, rerun.stderr
        study = optuna.load_study(study_name="full", storage=f"sqlite:///{home / 'optuna.db'}")
        assert not [t for t in study.trials if t.state == TrialState.RUNNING]
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
        runs = client.search_runs([client.get_experiment_by_name("full").experiment_id],
                                  max_results=10_000)
        assert not [run for run in runs if run.info.status == "RUNNING"]
        tracked = {int(run.data.tags["gdbench.trial_number"]) for run in runs
                   if run.data.tags.get("gdbench.role") == "trial"}
        assert {t.number for t in study.trials} <= tracked
