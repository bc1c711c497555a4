"""What a study's MLflow runs carry besides the trials' values.

- **System tags**, the ones MLflow's fluent API gives a run (``mlflow.user``,
  ``mlflow.source.name``, ``mlflow.source.type``, git's when the program is in
  a repository), resolved by MLflow's own run context providers, and
  ``gdbench.version``.
- **Working time**: the parent run lasts as long as the study worked, not from
  its first invocation to its last. Each invocation that ran trials adds its
  interval, from the tracker's start to its end, as a point of the parent's
  :data:`WORK_INTERVALS_METRIC`; the run ends the length of their union after
  its start (:func:`working_seconds`), kept as :data:`WORKING_TIME_METRIC`. A
  rerun that finds the budget spent adds nothing and leaves the end where it
  was; a resumed study adds its own time, not the time between.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from mlflow.entities import Metric, Run, RunTag
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_SOURCE_NAME

import gdbench

VERSION_TAG = "gdbench.version"

#: The parent run's working time, in seconds.
WORKING_TIME_METRIC = "working_time_s"

#: The parent run's working intervals: one point per invocation that worked,
#: its start as the step, its end as the value (Unix time in ms).
WORK_INTERVALS_METRIC = "gdbench.work_intervals_ms"


def system_tags(source: str | None) -> dict[str, str]:
    """The tags MLflow's fluent API gives a run here, with ``gdbench.version``.

    Args:
        source: the run's ``mlflow.source.name`` (the spec file); ``None`` for
            the program, as MLflow names it.
    """
    tags = resolve_tags({MLFLOW_SOURCE_NAME: source} if source else None)
    tags[VERSION_TAG] = gdbench.__version__
    return {key: str(value) for key, value in tags.items()}


def new_work_intervals(parent: Run, logged: Sequence[Metric],
                       worked: tuple[int, int] | None) -> list[tuple[int, int]]:
    """The working intervals (start, end in ms) an invocation adds to the parent run's.

    Args:
        parent: the study's parent run.
        logged: its :data:`WORK_INTERVALS_METRIC` points so far.
        worked: when this invocation worked (ran trials); ``None`` when it did not.

    A parent run written before working time was kept has worked from its
    start to its end: that interval is added first.
    """
    added = []
    if not logged and WORKING_TIME_METRIC not in parent.data.metrics and parent.info.end_time:
        added.append((parent.info.start_time, parent.info.end_time))
    if worked is not None and worked[1] > worked[0]:
        added.append(worked)
    return added


def working_seconds(intervals: Iterable[tuple[int, int]]) -> float:
    """The length of the union of ``intervals`` (start, end in ms), in seconds.

    Processes working on the study at once count their common time once.
    """
    total = 0
    reached: int | None = None
    for begin, end in sorted(intervals):
        if reached is None or begin > reached:
            total += end - begin
            reached = end
        elif end > reached:
            total += end - reached
            reached = end
    return total / 1000


def now_ms() -> int:
    """Now, as MLflow times runs and metrics: Unix time in milliseconds."""
    return int(time.time() * 1000)


def end_parent_run(client: MlflowClient, run_id: str, status: str, metrics: Mapping[str, float],
                   tags: Mapping[str, str], started_ms: int | None, timestamp: int) -> None:
    """Log the study's results on its parent run ``run_id`` and terminate it as ``status``,
    its end its working time after its start; this invocation's interval, from
    ``started_ms`` to ``timestamp``, counts unless ``started_ms`` is ``None``.

    The run is terminated even when logging fails.
    """
    end_time = None
    try:
        parent = client.get_run(run_id)
        added = new_work_intervals(
            parent, client.get_metric_history(run_id, WORK_INTERVALS_METRIC),
            # A new parent run starts once the store is ready: the interval not before.
            (max(started_ms, parent.info.start_time), timestamp) if started_ms is not None
            else None)
        client.log_batch(
            run_id,
            metrics=[Metric(key, value, timestamp, 0) for key, value in metrics.items()]
            + [Metric(WORK_INTERVALS_METRIC, float(end), timestamp, begin)
               for begin, end in added],
            tags=[RunTag(key, value) for key, value in tags.items()],
        )
        # Read back after writing: a process ending at the same moment sees this one's.
        seconds = working_seconds((m.step, int(m.value)) for m in
                                  client.get_metric_history(run_id, WORK_INTERVALS_METRIC))
        client.log_metric(run_id, WORKING_TIME_METRIC, seconds, timestamp)
        end_time = parent.info.start_time + round(seconds * 1000)
    finally:
        client.set_terminated(run_id, status, end_time=end_time)
