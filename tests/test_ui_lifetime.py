"""``gdbench ui`` leaves no server behind, however it ends: real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import servers
from test_dashboards import free_port_base

from gdbench.study.defaults import MLFLOW_FILE, OPTUNA_FILE, TENSORBOARD_FOLDER

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

READY = {"mlflow": "/api/2.0/mlflow/experiments/search?max_results=1",
         "tensorboard": "/data/runs", "optuna-dashboard": "/api/studies"}


def process_table() -> dict[int, tuple[int, int]]:
    """Every live process: pid → (parent pid, process group); zombies left out."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def groups_of_children(pid: int) -> set[int]:
    """The process groups that ``pid``'s children lead."""
    return {child for child, (parent, group) in process_table().items()
            if parent == pid and group == child}


def members(groups: set[int]) -> list[int]:
    return [pid for pid, (_, group) in process_table().items() if group in groups]


def start_ui(tmp_path: Path) -> tuple[subprocess.Popen[bytes], set[int], Path]:
    """``gdbench ui`` on a HOME with all three stores, once every dashboard answers."""
    from mlflow.tracking import MlflowClient

    home = tmp_path / "home"
    (home / TENSORBOARD_FOLDER).mkdir(parents=True)
    optuna.create_study(study_name="s", storage=f"sqlite:///{home / OPTUNA_FILE}")
    MlflowClient(f"sqlite:///{home / MLFLOW_FILE}").create_experiment("s")
    base = free_port_base()
    log = tmp_path / "ui.log"
    ui = servers.start_ui(home, base, log)
    for offset, path in enumerate(READY.values()):
        servers.wait_until(f"dashboard on {base + offset}",
                           lambda url=f"http://127.0.0.1:{base + offset}{path}":
                           servers.http_ok(url), ui, log, timeout_s=180)
    groups = groups_of_children(ui.pid)
    # The three servers and the watchdog.
    assert len(groups) == 4, (groups, log.read_text())
    assert len(members(groups)) > 4  # the servers' workers, in their groups
    return ui, groups, log


def wait_gone(groups: set[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while members(groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    return members(groups)


@pytest.mark.slow
def test_ui_killed_leaves_no_server(tmp_path: Path) -> None:
    ui, groups, log = start_ui(tmp_path)
    try:
        assert "they end with this command however it ends" in log.read_text()
        ui.kill()
        ui.wait()
        left = wait_gone(groups, 30)
        assert not left, f"left running after gdbench ui was killed: {left}"
    finally:
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.slow
def test_ui_says_so_and_ends_when_a_dashboard_dies(tmp_path: Path) -> None:
    ui, groups, log = start_ui(tmp_path)
    try:
        tensorboard = [pid for pid in groups
                       if b"tensorboard" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(tensorboard) == 1
        os.killpg(tensorboard[0], signal.SIGKILL)
        assert ui.wait(timeout=30) == 1
        assert "TensorBoard exited" in log.read_text(), log.read_text()
        left = wait_gone(groups, 30)
        assert not left, f"left running after gdbench ui ended: {left}"
    finally:
        if ui.poll() is None:
            ui.kill()
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
