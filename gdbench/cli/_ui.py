"""``gdbench ui``: MLflow, TensorBoard and optuna-dashboard on HOME, on 127.0.0.1, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gdbench.cli import _lifetime
from gdbench.cli._common import CommandError, add_home_argument, shell_path
from gdbench.study.defaults import MLFLOW_FILE, OPTUNA_FILE, TENSORBOARD_FOLDER

#: Default ports of the three dashboards (each tool's usual one).
DEFAULT_PORTS = {"mlflow": 5000, "tensorboard": 6006, "optuna-dashboard": 8080}

#: Each dashboard's name as its makers write it, and the page to open first.
TITLES = {"mlflow": "MLflow", "tensorboard": "TensorBoard", "optuna-dashboard": "optuna-dashboard"}
PAGES = {"mlflow": "", "tensorboard": "/#hparams", "optuna-dashboard": ""}

#: Where, under HOME, the dashboards' own output goes (their start-up lines, warnings).
LOG_FOLDER = "logs"

#: Environment each dashboard starts with, besides the user's. MLflow's server
#: otherwise starts its job runners (Huey consumers for its GenAI jobs, eight
#: processes, about 600 MiB in all), which reading a home's runs never uses.
#: A variable the user set keeps the user's value.
ENVIRONMENT = {"mlflow": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}}


def add_command(commands: Any) -> None:
    ui = commands.add_parser(
        "ui", help="start MLflow, TensorBoard and optuna-dashboard on the runs",
        description="Serve HOME's MLflow store, TensorBoard logs and Optuna storage on "
                    "127.0.0.1 until Ctrl-C.",
    )
    add_home_argument(ui, "the runs' folder")
    ui.add_argument("--port-base", type=int, metavar="P",
                    help="use ports P, P+1, P+2 (default: 5000, 6006, 8080)")
    ui.set_defaults(handler=_ui)


def _executable(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ui_commands(home: Path, port_base: int | None) -> list[tuple[str, int, list[str]]]:
    """(tool, port, command line) of each dashboard serving ``home``.

    Args:
        home: the runs' folder.
        port_base: ports ``port_base``, +1, +2; each tool's usual port when ``None``.
    """
    # Imported here: the tracking package loads TensorBoard's protos, which --help needs not.
    from gdbench.tracking.artifacts import ARTIFACTS_FOLDER

    home = home.resolve()
    ports = (dict(zip(DEFAULT_PORTS, range(port_base, port_base + 3))) if port_base is not None
             else dict(DEFAULT_PORTS))
    tools = []
    if (home / MLFLOW_FILE).is_file():
        tools.append(("mlflow", ports["mlflow"], [
            "mlflow", "server", "--backend-store-uri", f"sqlite:///{home / MLFLOW_FILE}",
            # The runs' mlflow-artifacts:/ locations are read from this HOME's folder, wherever
            # HOME was first written (gdbench.tracking.artifacts); absolute ones as they say.
            "--serve-artifacts", "--artifacts-destination", str(home / ARTIFACTS_FOLDER),
            "--host", "127.0.0.1", "--port", str(ports["mlflow"]),
            # One worker: on a small machine the default four start five times slower.
            "--workers", "1",
        ]))
    if (home / TENSORBOARD_FOLDER).is_dir():
        tools.append(("tensorboard", ports["tensorboard"], [
            "tensorboard", "--logdir", str(home / TENSORBOARD_FOLDER),
            "--host", "127.0.0.1", "--port", str(ports["tensorboard"]),
        ]))
    if (home / OPTUNA_FILE).is_file():
        # A read-only HOME's database is opened read only (gdbench.study.trials.storage).
        from gdbench.study.trials.storage import read_only_url

        tools.append(("optuna-dashboard", ports["optuna-dashboard"], [
            "optuna-dashboard", read_only_url(f"sqlite:///{home / OPTUNA_FILE}")[0],
            "--host", "127.0.0.1", "--port", str(ports["optuna-dashboard"]),
        ]))
    return tools


def _ui(arguments: argparse.Namespace) -> int:
    home = arguments.home
    if arguments.port_base is not None and not 1024 <= arguments.port_base <= 65533:
        raise CommandError(
            f"--port-base: expected a port in 1024..65533, got {arguments.port_base}")
    tools = ui_commands(home, arguments.port_base)
    if not tools:
        raise CommandError(f"nothing to show under {home}: no mlflow.db, tensorboard/ or "
                           f"optuna.db; run 'gdbench run SPEC --home {shell_path(home)}' first")
    for tool, port, _ in tools:
        if not _port_free(port):
            raise CommandError(f"port {port} for {tool} is in use; pass --port-base P to use "
                               "P, P+1 and P+2")
    logs = home.absolute() / LOG_FOLDER
    if os.access(logs if logs.is_dir() else home, os.W_OK):
        logs.mkdir(parents=True, exist_ok=True)
    else:
        # A read-only HOME (an archive, a read-only mount) is shown; the logs go elsewhere.
        logs = Path(tempfile.mkdtemp(prefix="gdbench-ui-logs-"))
        print(f"gdbench: {home} cannot be written here: the dashboards' logs go to {logs}",
              file=sys.stderr)
    processes: list[tuple[str, int, subprocess.Popen[bytes]]] = []
    for tool, port, command in tools:
        executable = _executable(command[0])
        if executable is None:
            print(f"gdbench: {tool} is not installed; skipped", file=sys.stderr)
            continue
        # Each tool leads its own process group, so that stopping it stops its
        # workers too (mlflow server forks uvicorn), and ends when this process ends,
        # however it ends (gdbench.cli._lifetime). Its chatter goes to its log, not
        # between the addresses. The three start together, none waiting for another.
        processes.append((tool, port, _lifetime.start_server(
            [executable, *command[1:]], logs / f"{tool}.log",
            env={**ENVIRONMENT.get(tool, {}), **os.environ})))
    watchdog, _ = _lifetime.start_watchdog([process.pid for _, _, process in processes])
    for tool, port, _ in processes:
        print(f"{TITLES[tool]:<17} http://127.0.0.1:{port}{PAGES[tool]}")
        for line in _study_lines(tool, f"http://127.0.0.1:{port}", home.absolute()):
            print(f"  {line}")
    print(f"Ctrl-C stops them all, and they end with this command however it ends; "
          f"their logs are in {logs}.", flush=True)
    # Ctrl-C, or SIGTERM from a service manager or `kill` (both raise KeyboardInterrupt,
    # see gdbench.cli.main), or any error (an output pipe closed): the dashboards go with it.
    try:
        while True:
            time.sleep(0.5)
            for tool, _, process in processes:
                if process.poll() is not None:
                    print(f"gdbench: {TITLES[tool]} exited with status {process.returncode} "
                          f"(see {logs / (tool + '.log')}); stopping the others",
                          file=sys.stderr)
                    return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(processes)
        watchdog.kill()
        watchdog.wait()


def _study_lines(tool: str, address: str, home: Path) -> list[str]:
    """The lines under a dashboard's address: each study's view, what to click."""
    # Imported here: the tracking package loads TensorBoard's protos, which --help needs not.
    from gdbench.tracking import dashboards

    if tool == "mlflow":
        try:
            links = dashboards.mlflow_links(f"sqlite:///{home / MLFLOW_FILE}", address)
        except Exception as error:  # noqa: BLE001 - the servers run on; only the links are lost
            print(f"gdbench: the studies' MLflow links could not be read from "
                  f"{home / MLFLOW_FILE}: {error}", file=sys.stderr)
            return []
    elif tool == "tensorboard":
        links = dashboards.tensorboard_links(
            address, dashboards.tensorboard_studies(home / TENSORBOARD_FOLDER))
    else:
        return []
    width = max((len(link.title) for link in links), default=0)
    lines = [f"{link.title:<{width}}  {link.url}" for link in links]
    if tool == "tensorboard":
        lines.insert(0, f"then: {dashboards.TENSORBOARD_CLICKS}")
    return lines


def _stop(processes: list[tuple[str, int, subprocess.Popen[bytes]]]) -> None:
    """Terminate every tool's process group and wait (killing one that does not stop in 10 s)."""
    for _, _, process in processes:
        _lifetime.signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for _, _, process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _lifetime.signal_group(process, signal.SIGKILL)
            process.wait()
        # Workers of a tool that exited on its own may still hold a port.
        _lifetime.signal_group(process, signal.SIGKILL)
