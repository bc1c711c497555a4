"""How long ``gdbench ui`` takes until all three dashboards answer, and what it starts.

A home with a study in it (``benchmarks/report_toy.toml``, run once, untimed,
when the home has no ``optuna.db``) is served by ``gdbench ui --port-base P``,
started as a user starts it. From the moment the command is launched, each
dashboard's address is asked every 0.1 s until it answers HTTP 200; the
figure is the time until the last of the three answers, with the CPU time
the processes under ``gdbench ui`` have spent by then (user + system: on a
shared machine the figure that load changes least). Then the processes
under ``gdbench ui`` are counted with their resident memory (PSS where Linux
gives it, shared pages split between processes), and ``gdbench ui`` is
stopped by SIGINT (Ctrl-C). Repeats give the median.

Two arms alternate, their order flipping each repeat: ``lean``, what a user
gets (MLflow's server without its job runners), and ``job runners``, the
same command with ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true`` in the
environment, as MLflow's server starts by default.

    python benchmarks/ui_start.py --home /tmp/ui_home          # 5 starts of each arm
    python benchmarks/ui_start.py --home /tmp/ui_home --repeats 1
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "benchmarks" / "report_toy.toml"

#: Each dashboard's page that answers once it serves (the offset from --port-base).
PAGES = {"MLflow": (0, "/"), "TensorBoard": (1, "/"), "optuna-dashboard": (2, "/dashboard/")}


#: arm → what it adds to the environment of ``gdbench ui``.
ARMS = {"lean": {}, "job runners": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"}}


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment.pop("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", None)
    return {**environment, **(extra or {})}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _memory(process: psutil.Process) -> float:
    try:
        info = process.memory_full_info()
        return getattr(info, "pss", info.rss)
    except (psutil.Error, OSError):
        return 0.0


def _cpu(tree: list[psutil.Process]) -> float:
    total = 0.0
    for process in tree:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def one_start(home: Path, port_base: int, timeout: float,
              extra: dict[str, str]) -> dict[str, object]:
    """Start ``gdbench ui``, wait for the three addresses, measure, stop it."""
    started = time.monotonic()
    ui = subprocess.Popen(
        [sys.executable, "-m", "gdbench", "ui", "--home", str(home),
         "--port-base", str(port_base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_environment(extra),
    )
    answered: dict[str, float] = {}
    try:
        while len(answered) < len(PAGES) and time.monotonic() - started < timeout:
            for name, (offset, page) in PAGES.items():
                if name not in answered and _answers(f"http://127.0.0.1:{port_base + offset}{page}"):
                    answered[name] = time.monotonic() - started
            time.sleep(0.1)
        cpu = _cpu([psutil.Process(ui.pid), *psutil.Process(ui.pid).children(recursive=True)])
        # The servers' background processes start beside the first answers: let them settle.
        time.sleep(2.0)
        tree = psutil.Process(ui.pid).children(recursive=True)
        memory = sum(_memory(process) for process in tree)
    finally:
        ui.send_signal(signal.SIGINT)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ui.kill()
            ui.wait()
    return {"answered": answered, "all": max(answered.values()) if len(answered) == 3 else None,
            "cpu": cpu, "processes": len(tree), "memory_mib": memory / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="the runs' folder served")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--port-base", type=int, default=15000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    home = args.home.resolve()
    if not (home / "optuna.db").is_file():
        subprocess.run([sys.executable, "-m", "gdbench", "run", str(SPEC), "--home", str(home),
                        "--quiet"], check=True, env=_environment(), stdout=subprocess.DEVNULL)
    rows: dict[str, list[dict[str, object]]] = {arm: [] for arm in ARMS}
    for repeat in range(args.repeats):
        order = list(ARMS) if repeat % 2 == 0 else list(reversed(ARMS))
        for arm in order:
            row = one_start(home, args.port_base, args.timeout, ARMS[arm])
            rows[arm].append(row)
            times = "  ".join(f"{name} {seconds:.1f} s"
                              for name, seconds in row["answered"].items())
            shown = "-" if row["all"] is None else f"{row['all']:.1f}"
            print(f"{arm:<12} all three: {shown} s ({times}); CPU {row['cpu']:.1f} s; "
                  f"{row['processes']} processes, "
                  f"{row['memory_mib']:.0f} MiB (load average {os.getloadavg()[0]:.1f})",
                  flush=True)
    print(f"\n{os.cpu_count()} CPUs; median over {args.repeats} starts of each arm\n")
    print("| arm | until all three answer (s) | MLflow (s) | TensorBoard (s) | "
          "optuna-dashboard (s) | CPU by then (s) | processes | memory (MiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for arm, arm_rows in rows.items():
        done = [row["all"] for row in arm_rows if row["all"] is not None]
        each = [statistics.median(row["answered"][name] for row in arm_rows
                                  if name in row["answered"]) for name in PAGES]
        print(f"| {arm} | {statistics.median(done):.1f} | "
              + " | ".join(f"{value:.1f}" for value in each)
              + f" | {statistics.median(row['cpu'] for row in arm_rows):.1f}"
              + f" | {statistics.median(row['processes'] for row in arm_rows):.0f} | "
              f"{statistics.median(row['memory_mib'] for row in arm_rows):.0f} |")


if __name__ == "__main__":
    main()
