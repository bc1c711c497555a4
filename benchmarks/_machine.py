"""What the benchmarks record about the machine they ran on."""

from __future__ import annotations

import time
from collections.abc import Callable

import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what Python knows where there is none."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def print_machine(load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    """Print the machine's line and the load averages before and after the runs."""
    import os

    print(f"- Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    print(f"- load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)}")


def cpu_seconds(run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def paired(first: Callable[[], object], second: Callable[[], object],
           repeats: int) -> tuple[list[float], list[float]]:
    """CPU seconds of each, run alternately, the order flipping each repeat."""
    a, b = [], []
    for index in range(repeats):
        if index % 2 == 0:
            a.append(cpu_seconds(first))
            b.append(cpu_seconds(second))
        else:
            b.append(cpu_seconds(second))
            a.append(cpu_seconds(first))
    return a, b
