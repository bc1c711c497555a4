"""Real servers on loopback for the distributed tests: PostgreSQL, an MLflow tracking server, TensorBoard.

Each server is a child process bound to 127.0.0.1 on a free port, waited for
until it answers (a PostgreSQL connection, an HTTP request), and stopped at the
end of the test session (terminate, then kill), whichever test failed.

:func:`shared_stack` starts the three once per pytest session, whichever test
module asks first (``test_distributed.py`` and ``test_browser.py`` share them):
the cache lives in this module, which Python imports once.

Run as a script, the module is a ``gdbench worker`` that stalls on purpose,
so that a test can kill it in the middle of a trial::

    python tests/servers.py --stall-at 2 --stall-file F -- worker SPEC --storage URL ...

The worker's second trial writes its number to F at its third epoch, then
sleeps until killed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest
import system_packages

VENV_BIN = Path(sys.executable).parent

#: Where the PostgreSQL server binaries may be: Debian's versioned folders first.
POSTGRES_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")

#: Seconds a server may take to answer after it starts (MLflow migrates a new
#: database first: tens of seconds on two busy cores).
START_TIMEOUT_S = 180.0

#: Host headers the MLflow server accepts: the test's own, and those
#: docker-compose.yml allows (checked against the real server).
ALLOWED_HOST_PATTERNS = ("127.0.0.1:*", "localhost:*")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``postgres``, or ``None`` when PostgreSQL is not installed."""
    candidates = sorted((Path(p) for pattern in POSTGRES_BIN_GLOBS for p in glob.glob(pattern)),
                        key=lambda p: [int(part) if part.isdigit() else 0 for part in p.parts])
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in reversed(candidates):
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def get_json(url: str, timeout: float = 30.0) -> Any:
    """GET ``url`` and decode its JSON reply."""
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return json.loads(reply.read())


def post_json(url: str, body: Any, timeout: float = 30.0) -> Any:
    """POST ``body`` as JSON to ``url`` and decode the JSON reply."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return json.loads(reply.read())


def wait_until(what: str, ready: Callable[[], bool], process: subprocess.Popen[bytes] | None,
               log: Path | None, timeout_s: float = START_TIMEOUT_S) -> None:
    """Poll ``ready`` until it returns true; fail with the server's log when it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if ready():
                return
        except (OSError, urllib.error.URLError, ConnectionError):
            pass
        died = process is not None and process.poll() is not None
        if died or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            state = f"exited with status {process.returncode}" if died else f"not ready in {timeout_s:.0f} s"
            raise RuntimeError(f"{what} {state}; its log ends with:\n{tail}")
        time.sleep(0.25)


def stop_process(process: subprocess.Popen[bytes], first_signal: int = signal.SIGTERM,
                 grace_s: float = 15.0) -> None:
    """Send ``first_signal``, wait ``grace_s``, then kill; reap the process either way.

    A process started in its own session (``start_new_session=True``) is
    signalled with its whole group: ``mlflow server`` runs its web server
    as a child process.
    """
    own_group = os.getpgid(process.pid) == process.pid if process.poll() is None else False

    def send(signal_number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if own_group:
                os.killpg(process.pid, signal_number)
            else:
                process.send_signal(signal_number)

    if process.poll() is None:
        send(first_signal)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            process.wait()
    if own_group:
        # The group's other members (the web server's workers) may outlive its leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def http_ok(url: str, host: str | None = None) -> bool:
    """Whether GET ``url`` answers 200 (with ``host`` as the Host header when given)."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status == 200
    except urllib.error.HTTPError:
        return False


@dataclasses.dataclass
class Stack:
    """The running servers and their folders.

    Attributes:
        root: the temporary folder of everything below.
        postgres_url: SQLAlchemy URL of the ``optuna`` database.
        mlflow_uri: the MLflow server's URL (its tracking URI).
        tensorboard_url: TensorBoard's URL.
        tensorboard_logdir: the folder TensorBoard reads (``HOME/tensorboard``).
        home: the ``--home`` of the workers.
        artifacts: the MLflow server's ``--artifacts-destination``.
        processes: every server process, stopped in reverse order.
    """

    root: Path
    postgres_url: str = ""
    mlflow_uri: str = ""
    tensorboard_url: str = ""
    tensorboard_logdir: Path = Path()
    home: Path = Path()
    artifacts: Path = Path()
    processes: list[tuple[str, subprocess.Popen[bytes], int]] = dataclasses.field(default_factory=list)

    def stop(self) -> None:
        """Stop every server, newest first, and delete the folders."""
        while self.processes:
            _, process, first_signal = self.processes.pop()
            stop_process(process, first_signal)
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres_user() -> dict[str, Any]:
    """Popen keywords running a child as ``postgres`` when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def start_postgres(stack: Stack, binaries: Path) -> None:
    """``initdb`` a cluster into ``stack.root/postgres`` and start its server on a free port.

    The data folder, the socket folder and the log belong to ``postgres``
    when the tests run as root. Durability is switched off (``fsync=off``):
    the cluster lives as long as the session.
    """
    folder = stack.root / "postgres"
    folder.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, log = folder / "data", folder / "server.log"
    subprocess.run(
        [str(binaries / "initdb"), "-D", str(data), "-U", "gdbench", "--auth=trust",
         "--encoding=UTF8", "--no-sync", "--no-instructions"],
        check=True, capture_output=True, cwd=folder, **_as_postgres_user(),
    )
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1", "port": str(port), "unix_socket_directories": str(folder),
        "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
        "max_connections": "200", "shared_buffers": "32MB",
    }
    command = [str(binaries / "postgres"), "-D", str(data)]
    for key, value in settings.items():
        command += ["-c", f"{key}={value}"]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, cwd=folder,
                                   **_as_postgres_user())
    # SIGINT is PostgreSQL's fast shutdown: sessions are ended, not waited for.
    stack.processes.append(("postgres", process, signal.SIGINT))

    import psycopg2

    def accepts() -> bool:
        try:
            with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=port, user="gdbench",
                                                     dbname="postgres", connect_timeout=3)):
                return True
        except psycopg2.OperationalError:
            # Refused, or "the database system is starting up".
            return False

    wait_until("postgres", accepts, process, log)
    with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=port, user="gdbench",
                                             dbname="postgres")) as db:
        db.autocommit = True
        with db.cursor() as cursor:
            cursor.execute("CREATE DATABASE optuna")
            cursor.execute("CREATE DATABASE mlflow")
    stack.postgres_url = f"postgresql+psycopg2://gdbench@127.0.0.1:{port}/optuna"


def compose_allowed_hosts() -> list[str]:
    """The ``--allowed-hosts`` value of the ``mlflow`` service in docker-compose.yml."""
    import yaml

    compose = yaml.safe_load((Path(__file__).parents[1] / "docker-compose.yml").read_text())
    command = compose["services"]["mlflow"]["command"]
    return command[command.index("--allowed-hosts") + 1].split(",")


def start_mlflow(stack: Stack) -> None:
    """``mlflow server`` on the cluster's ``mlflow`` database, artifacts proxied into a folder."""
    port = free_port()
    stack.artifacts = stack.root / "mlartifacts"
    log = stack.root / "mlflow.log"
    backend = stack.postgres_url.rsplit("/", 1)[0] + "/mlflow"
    allowed = list(dict.fromkeys([*ALLOWED_HOST_PATTERNS, *compose_allowed_hosts()]))
    command = [
        str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", backend,
        "--serve-artifacts", "--artifacts-destination", str(stack.artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--allowed-hosts", ",".join(allowed),
    ]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   cwd=stack.root, start_new_session=True)
    stack.processes.append(("mlflow", process, signal.SIGTERM))
    stack.mlflow_uri = f"http://127.0.0.1:{port}"
    wait_until("mlflow server", lambda: http_ok(f"{stack.mlflow_uri}/health"), process, log)
    # The health route answers before the app is up: wait for the REST API too.
    wait_until("mlflow REST API",
               lambda: http_ok(f"{stack.mlflow_uri}/api/2.0/mlflow/experiments/search?max_results=1"),
               process, log)


def start_tensorboard(stack: Stack) -> None:
    """TensorBoard on ``HOME/tensorboard``, reloading every second."""
    port = free_port()
    stack.tensorboard_logdir = stack.home / "tensorboard"
    stack.tensorboard_logdir.mkdir(parents=True)
    log = stack.root / "tensorboard.log"
    command = [str(VENV_BIN / "tensorboard"), "--logdir", str(stack.tensorboard_logdir),
               "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   cwd=stack.root, start_new_session=True)
    stack.processes.append(("tensorboard", process, signal.SIGTERM))
    stack.tensorboard_url = f"http://127.0.0.1:{port}"
    wait_until("tensorboard", lambda: http_ok(f"{stack.tensorboard_url}/data/runs"), process, log)


def missing_prerequisite() -> str | None:
    """Why the stack cannot start here, or ``None``."""
    if postgres_bin() is None:
        return ("PostgreSQL server binaries (initdb, postgres) not found: "
                "apt-get install postgresql")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed: pip install psycopg2-binary"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the PostgreSQL server"
    for tool in ("mlflow", "tensorboard"):
        if not (VENV_BIN / tool).is_file():
            return f"{tool} is not installed beside {sys.executable}"
    return None


_shared: dict[str, Any] = {}


def shared_stack(request: pytest.FixtureRequest) -> Stack:
    """The session's stack, started at the first call and stopped when the session ends.

    Skips the test, with the reason, when PostgreSQL or a server is missing (fails it in CI).
    """
    if "stack" in _shared:
        return _shared["stack"]
    reason = missing_prerequisite()
    if reason is not None:
        system_packages.missing(reason)
    stack = Stack(root=Path(tempfile.mkdtemp(prefix="gdbench-servers-")))
    os.chmod(stack.root, 0o755)
    stack.home = stack.root / "home"
    stack.home.mkdir()
    request.config.add_cleanup(stack.stop)
    try:
        start_postgres(stack, postgres_bin())  # type: ignore[arg-type]
        start_mlflow(stack)
        start_tensorboard(stack)
    except BaseException:
        stack.stop()
        raise
    _shared["stack"] = stack
    return stack


def cached(key: str, build: Callable[[], Any]) -> Any:
    """``build()`` once per session under ``key`` (a study the tests of several modules read)."""
    if key not in _shared:
        _shared[key] = build()
    return _shared[key]


# -- workers ----------------------------------------------------------------------

#: A toy study: 30 epochs of Adam on Rosenbrock's valley, a fraction of a second a trial.
TOY_SPEC = """\
name = "{name}"
task = "rosenbrock"
optimizer = "adam"
epochs = 30
trials = {trials}
sampler = "random"
pruner = "none"
population = false

[search]
learning_rate = {{low = 0.001, high = 0.1}}
"""

#: Heartbeats every second, dead after three: the tests wait seconds, not minutes.
HEARTBEAT_ARGS = ("--heartbeat-interval", "1", "--grace-period", "3")


def write_toy_spec(stack: Stack, name: str, trials: int) -> Path:
    """A toy study's spec file in the stack's folder."""
    path = stack.root / f"{name}.toml"
    path.write_text(TOY_SPEC.format(name=name, trials=trials))
    return path


def worker_environment() -> dict[str, str]:
    """The environment of a worker process: quiet TensorFlow, on the CPU."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow",
            "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": ""}


def worker_command(stack: Stack, spec_path: Path) -> list[str]:
    """``gdbench worker`` on the stack's PostgreSQL, MLflow server and TensorBoard folder."""
    return ["worker", str(spec_path), "--storage", stack.postgres_url,
            "--tracking-uri", stack.mlflow_uri, "--home", str(stack.home), *HEARTBEAT_ARGS]


def start_ui(home: Path, port_base: int, log: Path) -> subprocess.Popen[bytes]:
    """``gdbench ui --home HOME --port-base P``, its output in ``log``."""
    with open(log, "wb") as log_file:
        return subprocess.Popen([sys.executable, "-m", "gdbench", "ui", "--home", str(home),
                                 "--port-base", str(port_base)], stdout=log_file,
                                stderr=subprocess.STDOUT, env=worker_environment())


def start_worker(stack: Stack, arguments: Sequence[str], log: Path,
                 runner: Sequence[str] = ("-m", "gdbench")) -> subprocess.Popen[bytes]:
    """One worker process, its output in ``log``."""
    with open(log, "wb") as log_file:
        return subprocess.Popen([sys.executable, *runner, *arguments], stdout=log_file,
                                stderr=subprocess.STDOUT, cwd=stack.root, env=worker_environment())


def wait_for_workers(processes: Sequence[subprocess.Popen[bytes]], logs: Sequence[Path],
                     timeout_s: float) -> None:
    """Wait for every worker; fail with the logs of any that failed or hung (and kill it)."""
    deadline = time.monotonic() + timeout_s
    failures = []
    for process, log in zip(processes, logs):
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop_process(process)
            failures.append(f"{log.name} still running after {timeout_s:.0f} s")
        if process.returncode:
            failures.append(f"{log.name} exited with status {process.returncode}")
    if failures:
        tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in logs)
        raise AssertionError("; ".join(failures) + "\n" + tails)


@dataclasses.dataclass(frozen=True)
class StudyRun:
    """A study that several workers ran to its budget on the stack.

    Attributes:
        name: the study's name.
        budget: its trial budget.
        workers: the worker processes' ids.
        seconds: wall time from the first worker's start to the last one's end.
    """

    name: str
    budget: int
    workers: tuple[int, ...]
    seconds: float


def three_worker_study(stack: Stack) -> StudyRun:
    """Study ``three_workers``: created once, then three workers on a budget of 30 trials."""
    from gdbench.study import load_spec
    from gdbench.study.worker import create_study

    name, budget = "three_workers", 30
    spec_path = write_toy_spec(stack, name, budget)
    create_study(load_spec(spec_path), stack.postgres_url, home=stack.home,
                 tracking_uri=stack.mlflow_uri)
    logs = [stack.root / f"{name}-worker-{index}.log" for index in range(3)]
    started = time.monotonic()
    processes = [start_worker(stack, worker_command(stack, spec_path), log) for log in logs]
    wait_for_workers(processes, logs, timeout_s=240)
    return StudyRun(name=name, budget=budget, workers=tuple(p.pid for p in processes),
                    seconds=time.monotonic() - started)


# -- a worker that stalls on purpose -----------------------------------------------


def _stalling_main(argv: Sequence[str]) -> int:
    """``gdbench`` with one change: the worker's ``--stall-at``-th trial sleeps mid-way."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stall-at", type=int, required=True, metavar="K",
                        help="the worker's K-th trial (from 1) stalls at its third epoch")
    parser.add_argument("--stall-file", type=Path, required=True,
                        help="where the stalled trial's number is written")
    parser.add_argument("gdbench_args", nargs=argparse.REMAINDER,
                        help="-- then the gdbench command line")
    arguments = parser.parse_args(argv)
    gdbench_args = arguments.gdbench_args
    if gdbench_args[:1] == ["--"]:
        gdbench_args = gdbench_args[1:]

    from gdbench import cli
    from gdbench.study.trials import pruning

    started: list[int] = []
    original = pruning.PruningCallback.on_epoch_end

    def on_epoch_end(self: pruning.PruningCallback, epoch: int, logs: Any = None) -> None:
        original(self, epoch, logs)
        if self.trial.number not in started:
            started.append(self.trial.number)
        if len(started) == arguments.stall_at and epoch == 2:
            partial = arguments.stall_file.with_suffix(".partial")
            partial.write_text(str(self.trial.number))
            partial.replace(arguments.stall_file)
            time.sleep(3600)

    pruning.PruningCallback.on_epoch_end = on_epoch_end  # type: ignore[method-assign]
    return cli.main(gdbench_args)


if __name__ == "__main__":
    sys.exit(_stalling_main(sys.argv[1:]))
