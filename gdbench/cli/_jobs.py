"""``gdbench run --jobs N``: a spec's studies in up to N processes at once.

Each study runs in a ``gdbench run SPEC --study NAME`` process of its own,
quiet, its output kept aside and printed whole when it ends, so that the
leaderboards of studies running together do not interleave. A study is the
same whether it ran alone or beside others: each process opens its own study
in the shared stores, whose set-up is locked against the others.

Ctrl-C (or SIGTERM) reaches every running study, which keeps its finished
trials and queues the interrupted ones again, as alone.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import IO

from gdbench.cli._common import INTERRUPTED

__all__ = ["run_in_parallel"]

#: Seconds a study is given to end after the interrupt is passed on to it.
STOP_TIMEOUT_S = 60

#: What a single study's run prints last: the parallel run prints it once, for all.
_NEXT = "Next: "


def run_in_parallel(arguments: argparse.Namespace, names: Sequence[str]) -> int:
    """Run the studies ``names`` of ``arguments.spec``, up to ``arguments.jobs`` at once.

    Returns:
        0 when every study ended well; else the first failed study's status
        (130 when interrupted).
    """
    waiting = list(names)
    running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes], float]] = {}
    statuses: dict[str, int] = {}
    try:
        while waiting or running:
            while waiting and len(running) < arguments.jobs:
                name = waiting.pop(0)
                output = tempfile.TemporaryFile()
                running[name] = (subprocess.Popen(_command(arguments, name), stdout=output,
                                                  stderr=subprocess.STDOUT),
                                 output, time.monotonic())
                print(f"study {name}: started", flush=True)
            for name, (process, output, started) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                statuses[name] = process.returncode
                _show(name, output, process.returncode, time.monotonic() - started)
            time.sleep(0.1)
    except KeyboardInterrupt:
        for process, _, _ in running.values():
            process.send_signal(signal.SIGINT)
        for name, (process, output, started) in running.items():
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            statuses[name] = INTERRUPTED
            _show(name, output, INTERRUPTED, time.monotonic() - started)
        return INTERRUPTED
    failed = [statuses[name] for name in names if statuses.get(name, 0) != 0]
    return failed[0] if failed else 0


def _command(arguments: argparse.Namespace, name: str) -> list[str]:
    """The ``gdbench run`` of one study, with the options the parallel run was given."""
    command = [sys.executable, "-m", "gdbench"]
    command += ["--debug"] if arguments.debug else []
    command += ["run", str(arguments.spec), "--study", name, "--home", str(arguments.home),
                "--quiet", "--workers", str(arguments.workers),
                "--heartbeat-interval", str(arguments.heartbeat_interval),
                "--grace-period", str(arguments.grace_period)]
    for option, value in (("--trials", arguments.trials), ("--storage", arguments.storage),
                          ("--tracking-uri", arguments.tracking_uri)):
        if value is not None:
            command += [option, str(value)]
    return command


def _show(name: str, output: IO[bytes], status: int, seconds: float) -> None:
    """Print a study's whole output once it ended, less the closing hint printed once for all."""
    output.seek(0)
    text = output.read().decode(errors="replace")
    output.close()
    lines = [line for line in text.splitlines() if not line.startswith(_NEXT)]
    while lines and not lines[-1].strip():
        lines.pop()
    ended = "done" if status == 0 else ("interrupted" if status == INTERRUPTED
                                        else f"failed (status {status})")
    print(f"study {name}: {ended} in {seconds:.1f} s", flush=True)
    stream = sys.stdout if status == 0 else sys.stderr
    for line in lines:
        print(line, file=stream)
    stream.flush()
