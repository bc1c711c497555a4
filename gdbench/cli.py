"""The ``gdbench`` command: run studies, look at them, list what there is.

    gdbench run studies/quickstart.toml          # run (or resume) the spec's studies
    gdbench ui                                   # MLflow, TensorBoard and optuna-dashboard
    gdbench report quickstart_sigmoid            # leaderboard and plots of a stored study
    gdbench list                                 # optimizers, schedules and tasks
    gdbench create SPEC --storage URL            # a study shared by workers (many machines)
    gdbench worker SPEC --storage URL            # one more worker on it

``create`` and ``worker`` live in :mod:`gdbench.study.worker`.

A spec error, an unknown study or a bad argument prints one line to stderr
and exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main"]

#: Exit status of a command that could not start: a bad spec, study or argument.
USAGE_ERROR = 2

DEFAULT_HOME = Path("runs")

#: The commands of :mod:`gdbench.study.worker` (a study shared by workers), with their help.
WORKER_COMMANDS = {
    "create": "create a study in a shared storage, for workers to join",
    "worker": "join a study as one more worker, until its budget is used up",
}

#: Default ports of the three dashboards (each tool's usual one).
DEFAULT_PORTS = {"mlflow": 5000, "tensorboard": 6006, "optuna-dashboard": 8080}


class CommandError(Exception):
    """A problem the user can fix, reported as one line on stderr."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gdbench`` command line.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit status: 0 on success, 2 on a usage or spec error, 130 when interrupted.
    """
    # Before TensorFlow, matplotlib or Keras is imported by any command.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(with_worker_commands=bool(argv) and argv[0] in WORKER_COMMANDS)
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        parser.print_help()
        return USAGE_ERROR
    logging.basicConfig(level=logging.WARNING, format="gdbench: %(message)s")
    for noisy in ("alembic", "mlflow", "absl", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if arguments.command in WORKER_COMMANDS:
        _quiet_optuna()
    try:
        return arguments.handler(arguments)
    except KeyboardInterrupt:
        print("gdbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except CommandError as error:
        print(f"gdbench: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as error:
        from gdbench.study import SpecError

        if isinstance(error, SpecError):
            print(f"gdbench: error: {error}", file=sys.stderr)
            return USAGE_ERROR
        raise


def _parser(with_worker_commands: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gdbench",
        description="Hyperparameter studies of gradient-descent optimizers: a TOML spec, "
                    "one command, then MLflow, TensorBoard and optuna-dashboard show every trial.",
        epilog="Start with: gdbench run studies/quickstart.toml && gdbench ui",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run (or resume) the studies of a spec file",
        description="Run the studies of SPEC until each holds its number of finished trials. "
                    "Rerunning the same command resumes: only the missing trials run.",
    )
    run.add_argument("spec", type=Path, metavar="SPEC",
                     help="a study spec (TOML), e.g. studies/quickstart.toml")
    run.add_argument("--trials", type=int, metavar="N",
                     help="finished trials to reach (overrides the spec)")
    _add_location_arguments(run)
    run.add_argument("--tracking-uri", metavar="URI",
                     help="MLflow tracking URI (default: sqlite:///HOME/mlflow.db)")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="local 'gdbench worker' processes sharing each study "
                          "(default 1; keep it small with SQLite)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=_run)

    if with_worker_commands:
        from gdbench.study.worker import add_worker_commands

        add_worker_commands(commands)
    else:
        # Listed for --help; built (TensorFlow imported) only when one of them runs.
        for name, text in WORKER_COMMANDS.items():
            commands.add_parser(name, help=text)

    ui = commands.add_parser(
        "ui", help="start MLflow, TensorBoard and optuna-dashboard on the runs",
        description="Serve HOME's MLflow store, TensorBoard logs and Optuna storage on "
                    "127.0.0.1 until Ctrl-C.",
    )
    ui.add_argument("--home", type=Path, default=DEFAULT_HOME, metavar="DIR",
                    help=f"the runs' folder (default: {DEFAULT_HOME})")
    ui.add_argument("--port-base", type=int, metavar="P",
                    help="use ports P, P+1, P+2 (default: 5000, 6006, 8080)")
    ui.set_defaults(handler=_ui)

    listing = commands.add_parser("list", help="list optimizers, schedules and tasks",
                                  description="List every optimizer (keywords, defaults and "
                                              "default search space), schedule and task.")
    listing.set_defaults(handler=_list)

    report_parser = commands.add_parser(
        "report", help="print a stored study's leaderboard and write its plots",
        description="Print the leaderboard of STUDY and write leaderboard.csv and Optuna's plots.",
    )
    report_parser.add_argument("study", metavar="STUDY", help="the study's name")
    _add_location_arguments(report_parser)
    report_parser.add_argument("--out", type=Path, metavar="DIR",
                               help="where to write (default: HOME/reports/STUDY)")
    report_parser.add_argument("--limit", type=int, default=10, metavar="N",
                               help="leaderboard rows printed (default 10)")
    report_parser.set_defaults(handler=_report)
    return parser


def _add_location_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, metavar="DIR",
                        help=f"folder of optuna.db, mlflow.db, tensorboard/ and reports/ "
                             f"(default: {DEFAULT_HOME})")
    parser.add_argument("--storage", metavar="URL",
                        help="Optuna storage URL (default: sqlite:///HOME/optuna.db)")


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise CommandError(f"{name}: expected an integer >= 1, got {value}")


# -- run ------------------------------------------------------------------------


def _run(arguments: argparse.Namespace) -> int:
    _check_positive("--trials", arguments.trials)
    _check_positive("--workers", arguments.workers)
    from gdbench.study import format_leaderboard, leaderboard, load_specs, run_study
    from gdbench.study.runner import locations

    specs = load_specs(arguments.spec)
    _quiet_optuna()
    for spec in specs:
        try:
            study = run_study(
                spec, home=arguments.home, trials=arguments.trials, storage=arguments.storage,
                tracking_uri=arguments.tracking_uri, quiet=arguments.quiet,
                workers=arguments.workers,
            )
        except ValueError as error:
            # An existing study that does not fit the spec (another direction, say).
            raise CommandError(str(error)) from None
        where = locations(spec, home=arguments.home, storage=arguments.storage,
                          tracking_uri=arguments.tracking_uri)
        print(f"\nstudy {spec.name} ({spec.objective.metric}, {spec.objective.direction})")
        print(format_leaderboard(leaderboard(study)))
        print(f"report: {where.report_dir}")
    print(f"\nNext: {_command_name()} ui --home {_shell_path(arguments.home)}")
    return 0


def _command_name() -> str:
    """How to call gdbench again: ``gdbench`` where it is on PATH, else the path it was run by."""
    program = Path(sys.argv[0])
    if program.name == "gdbench" and shutil.which("gdbench") is None:
        return _shell_path(program)
    return "gdbench"


def _quiet_optuna() -> None:
    """Optuna's per-study info lines would interleave with the progress bar."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _shell_path(path: Path) -> str:
    text = str(path)
    return text if all(c.isalnum() or c in "/._-~" for c in text) else repr(text)


# -- report -----------------------------------------------------------------------


def _report(arguments: argparse.Namespace) -> int:
    import optuna

    from gdbench.study import format_leaderboard, leaderboard, write_report

    home = arguments.home.resolve()
    storage = arguments.storage or f"sqlite:///{home / 'optuna.db'}"
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).is_file():
        raise CommandError(f"no Optuna storage at {storage[len('sqlite:///'):]}; "
                           "pass --home or --storage")
    _quiet_optuna()
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    if arguments.study not in names:
        raise CommandError(f"no study named {arguments.study!r} in {storage}; "
                           f"studies: {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=arguments.study, storage=storage)
    print(format_leaderboard(leaderboard(study), limit=arguments.limit))
    out = arguments.out or home / "reports" / arguments.study
    for path in write_report(study, out):
        print(f"wrote {path}")
    return 0


# -- list -------------------------------------------------------------------------


def _defaults_text(parameters: dict[str, Any]) -> str:
    return ", ".join(name if default is _REQUIRED else f"{name}={default!r}"
                     for name, default in parameters.items())


_REQUIRED = object()


def _signature(callable_: Any, kinds: tuple[str, ...]) -> dict[str, Any]:
    import inspect

    return {
        p.name: (_REQUIRED if p.default is p.empty else p.default)
        for p in inspect.signature(callable_).parameters.values()
        if p.kind.name in kinds and p.name not in ("self", "name")
    }


def _domain_text(key: str, domain: Any) -> str:
    from gdbench.study import spaces

    if isinstance(domain, spaces.OneMinusLogUniform):
        return f"{key}: 1-{key} log-uniform in [{domain.low:g}, {domain.high:g}]"
    if isinstance(domain, spaces.LogUniform):
        return f"{key}: log-uniform in [{domain.low:g}, {domain.high:g}]"
    if isinstance(domain, spaces.Uniform):
        return f"{key}: uniform in [{domain.low:g}, {domain.high:g}]"
    if isinstance(domain, spaces.StepsRange):
        return f"{key}: {domain.low:.0%}-{domain.high:.0%} of the run's steps"
    if isinstance(domain, spaces.Steps):
        return f"{key}: {domain.fraction:.0%} of the run's steps"
    if isinstance(domain, spaces.StepsList):
        return f"{key}: at " + ", ".join(f"{f:.0%}" for f in domain.fractions) + " of the run"
    if isinstance(domain, spaces.Choice):
        return f"{key}: one of {list(domain.choices)}"
    if isinstance(domain, spaces.IntRange):
        return f"{key}: integer in [{domain.low}, {domain.high}]"
    return f"{key} = {domain.value!r}"


def _list(arguments: argparse.Namespace) -> int:
    del arguments
    import gdbench.optimizers
    import gdbench.schedules
    import gdbench.tasks
    from gdbench.study import spaces

    print("Optimizers (keywords and defaults; default search space):")
    for name, optimizer_class in gdbench.optimizers.REGISTRY.items():
        keywords = _signature(optimizer_class.__init__, ("POSITIONAL_OR_KEYWORD",))
        print(f"  {name:<10} {_defaults_text(keywords)}")
        space = spaces.OPTIMIZER_SPACES.get(name, {})
        if space:
            print(f"  {'':<10} search: " + "; ".join(_domain_text(k, d) for k, d in space.items()))
    print("\nSchedules (keywords; η is the optimizer's learning_rate; default search space):")
    for name, schedule_class in gdbench.schedules.REGISTRY.items():
        keywords = _signature(schedule_class.__init__, ("POSITIONAL_OR_KEYWORD",))
        print(f"  {name:<18} {_defaults_text(keywords)}")
        space = spaces.SCHEDULE_SPACES[name]
        described = [_domain_text(k, d) for k, d in space.parameters.items()]
        described += [derived.description for derived in space.derived.values()]
        if space.learning_rate_keyword:
            described.insert(0, f"{space.learning_rate_keyword} = η")
        print(f"  {'':<18} " + "; ".join(described))
    print("\nTasks (options; default epochs, batch size and objective):")
    for name, task_class in gdbench.tasks.REGISTRY.items():
        kind = "toy" if issubclass(task_class, gdbench.tasks.ToyTask) else "image"
        batch = task_class.default_batch_size or "full"
        print(f"  {name:<20} {kind:<5} epochs={task_class.default_epochs} batch_size={batch} "
              f"objective={task_class.objective_metric}")
        print(f"  {'':<20} {_defaults_text(_signature(task_class.__init__, ('KEYWORD_ONLY',)))}")
    print("\nSamplers: tpe (default), random, grid, cmaes, gp.  "
          "Pruners: median (default), successive_halving, hyperband, none.")
    return 0


# -- ui ---------------------------------------------------------------------------


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
    home = home.resolve()
    ports = (dict(zip(DEFAULT_PORTS, range(port_base, port_base + 3))) if port_base is not None
             else dict(DEFAULT_PORTS))
    tools = []
    if (home / "mlflow.db").is_file():
        tools.append(("mlflow", ports["mlflow"], [
            "mlflow", "server", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
            "--default-artifact-root", (home / "mlartifacts").as_uri(),
            "--host", "127.0.0.1", "--port", str(ports["mlflow"]),
            # One worker: on a small machine the default four start five times slower.
            "--workers", "1",
        ]))
    if (home / "tensorboard").is_dir():
        tools.append(("tensorboard", ports["tensorboard"], [
            "tensorboard", "--logdir", str(home / "tensorboard"),
            "--host", "127.0.0.1", "--port", str(ports["tensorboard"]),
        ]))
    if (home / "optuna.db").is_file():
        tools.append(("optuna-dashboard", ports["optuna-dashboard"], [
            "optuna-dashboard", f"sqlite:///{home / 'optuna.db'}",
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
                           f"optuna.db; run 'gdbench run SPEC --home {_shell_path(home)}' first")
    for tool, port, _ in tools:
        if not _port_free(port):
            raise CommandError(f"port {port} for {tool} is in use; pass --port-base P to use "
                               "P, P+1 and P+2")
    processes: list[tuple[str, int, subprocess.Popen[bytes]]] = []
    for tool, port, command in tools:
        executable = _executable(command[0])
        if executable is None:
            print(f"gdbench: {tool} is not installed; skipped", file=sys.stderr)
            continue
        # Each tool leads its own process group, so that stopping it stops its
        # workers too (mlflow server forks uvicorn and job runners).
        processes.append((tool, port, subprocess.Popen([executable, *command[1:]],
                                                       start_new_session=True)))
    for tool, port, _ in processes:
        print(f"{tool:<17} http://127.0.0.1:{port}")
    print("Ctrl-C stops them all.", flush=True)
    # Ctrl-C, or SIGTERM from a service manager or `kill`: the dashboards go with it.
    # SIGINT is set explicitly: a shell starting gdbench in the background ignores it.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        running = list(processes)
        while running:
            time.sleep(0.5)
            for tool, port, process in list(running):
                if process.poll() is not None:
                    print(f"gdbench: {tool} exited with status {process.returncode}",
                          file=sys.stderr)
                    running.remove((tool, port, process))
        return 1
    except KeyboardInterrupt:
        _stop(processes)
        return 0


def _interrupt(signum: int, frame: Any) -> None:
    del signum, frame
    raise KeyboardInterrupt


def _stop(processes: list[tuple[str, int, subprocess.Popen[bytes]]]) -> None:
    """Terminate every tool's process group and wait (killing one that does not stop in 10 s)."""
    for _, _, process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for _, _, process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        # Workers of a tool that exited on its own may still hold a port.
        _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
