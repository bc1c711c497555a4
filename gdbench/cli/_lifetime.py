"""Servers that end with the process that started them, however it ends (Linux).

Each server leads a process group of its own (its workers in it), started by
:func:`start_server` with a parent-death signal: when the starting process
dies, even by SIGKILL, the kernel sends the server SIGTERM
(``prctl(PR_SET_PDEATHSIG)``). Its workers have no such signal, and a server
may not stop them on SIGTERM: a watchdog process (:func:`start_watchdog`)
holds one end of a pipe whose other end only the starting process holds;
when that process ends, the pipe closes and the watchdog ends the servers'
process groups, SIGTERM, then SIGKILL after :data:`KILL_AFTER_S` seconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["KILL_AFTER_S", "signal_group", "start_server", "start_watchdog"]

#: Seconds a server group has to stop on SIGTERM before SIGKILL.
KILL_AFTER_S = 5

_PR_SET_PDEATHSIG = 1

#: The watchdog: waits for the pipe to close, then ends the process groups it is given.
_WATCHDOG = """
import os, signal, sys, time
fd, groups = int(sys.argv[1]), [int(group) for group in sys.argv[2:]]
signal.signal(signal.SIGINT, signal.SIG_IGN)
while os.read(fd, 1):
    pass
def signal_groups(signum):
    alive = []
    for group in groups:
        try:
            os.killpg(group, signum)
            alive.append(group)
        except (ProcessLookupError, PermissionError):
            pass
    return alive
deadline = time.monotonic() + float(os.environ["GDBENCH_KILL_AFTER_S"])
while signal_groups(signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL):
    if time.monotonic() > deadline + 1:
        break
    time.sleep(0.2)
"""


def _die_with_parent() -> None:
    """In the child, before it runs the server: a group of its own, SIGTERM when its parent dies."""
    os.setsid()
    libc = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and libc:
        ctypes.CDLL(libc, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_server(command: Sequence[str], log: Path,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` leading its own process group, ending when this process ends;
    its output appended to ``log``, its environment ``env`` (this process's if ``None``)."""
    with open(log, "ab") as output:
        return subprocess.Popen(list(command), stdout=output, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                                env=None if env is None else dict(env))


def start_watchdog(groups: Sequence[int]) -> tuple[subprocess.Popen[bytes], int]:
    """Start the watchdog of process ``groups``: it ends them once this process has ended.

    Returns:
        The watchdog, and the pipe's end this process holds (closing it ends the groups).
    """
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, False)
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(read_end), *map(str, groups)],
        pass_fds=(read_end,), stdin=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "GDBENCH_KILL_AFTER_S": str(KILL_AFTER_S)})
    os.close(read_end)
    return watchdog, write_end


def signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the process group ``process`` leads (nothing where it is gone)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
