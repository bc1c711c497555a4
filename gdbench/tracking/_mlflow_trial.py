"""One trial's MLflow child run, written through its study's writer thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import Metric, Param, RunTag

from gdbench.tracking._journal import Journal
from gdbench.tracking._mlflow_context import now_ms

if TYPE_CHECKING:
    from gdbench.tracking._mlflow import MlflowStudy


class MlflowTrial:
    """One trial's child run, with metrics buffered between flushes.

    The run's parameters go with its first batch of metrics (within
    ``flush_interval_s`` of its start, or with its end): a short trial's run
    is then three store writes, created, its one batch, ended.

    Args:
        study: the study whose writer thread sends this trial's writes.
        created_run: the queued creation of the child run, giving its id.
        flush_interval_s: buffered metrics are sent at most this often.
        params: the run's parameters.
        entry: the run as the study's journal keeps it (its id, name, start, tags and
            parameters), or ``None`` without a journal: every metric is added to it, and at
            the end it is journaled whole (:meth:`MlflowStudy.journaled`).
    """

    def __init__(
        self, study: MlflowStudy, created_run: Future[str], flush_interval_s: float,
        params: list[Param] | None = None, entry: dict[str, Any] | None = None,
    ) -> None:
        self._study = study
        self._created_run = created_run
        self._flush_interval_s = flush_interval_s
        self._params = list(params or [])
        self._pending: list[Metric] = []
        self._last_flush = time.monotonic()
        self._entry = entry
        self._logged: list[Metric] = []

    @property
    def run_id(self) -> str:
        """The child run's id, once the writer thread has created the run (waits for it).

        Raises:
            Exception: the error that kept the run from being created.
        """
        return self._created_run.result()

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Buffer ``metrics`` at ``step``; send the buffer if the last send is old enough."""
        timestamp = now_ms()
        self._add(Metric(key, value, timestamp, step) for key, value in metrics.items())
        if time.monotonic() - self._last_flush >= self._flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Queue the buffered metrics as one batch."""
        if self._pending or self._params:
            self._submit_to_run(self._study.client.log_batch, metrics=self._pending,
                                params=self._params)
            self._pending, self._params = [], []
        self._last_flush = time.monotonic()

    def log_artifact(self, content: bytes, file_name: str, artifact_path: str) -> None:
        """Queue ``content`` as the run's artifact ``<artifact_path>/<file_name>``.

        The content is taken now: the file it was read from may change or go
        before the writer gets to it.
        """
        self._submit_to_run(self._study.write_artifact, content, file_name, artifact_path)

    def finish(
        self, status: str, step: int, metrics: Mapping[str, float], tags: Mapping[str, str]
    ) -> None:
        """Queue buffered and final metrics with ``tags`` as one batch, then the run's end.

        The run is terminated even when the batch fails, so it never stays RUNNING.
        """
        timestamp = now_ms()
        self._add(Metric(key, value, timestamp, step) for key, value in metrics.items())
        journaled = None
        if self._entry is not None:
            journaled = self._study.journaled({
                **self._entry, "tags": {**self._entry["tags"], **tags}, "status": status,
                "metrics": [(m.key, m.value, m.timestamp, m.step) for m in self._logged]})
        self._submit_to_run(
            self._log_and_terminate,
            self._pending,
            [RunTag(key, value) for key, value in tags.items()],
            status,
            self._params,
            None if journaled is None else journaled["path"],
        )
        self._pending, self._params = [], []

    def _add(self, metrics: Iterable[Metric]) -> None:
        added = list(metrics)
        self._pending.extend(added)
        if self._entry is not None:
            self._logged.extend(added)

    def _submit_to_run(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``write(run_id, *args, **kwargs)``.

        The run's creation was queued first, and the writer runs writes in
        order: by the time this one runs, the run id is known (or its
        creation failed, and so does this write, with the same error).
        """

        def write_to_run() -> Any:
            return write(self._created_run.result(), *args, **kwargs)

        self._study.submit(write_to_run)

    def _log_and_terminate(
        self, run_id: str, metrics: list[Metric], tags: list[RunTag], status: str,
        params: list[Param], journaled: str | None,
    ) -> None:
        try:
            self._study.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        finally:
            self._study.client.set_terminated(run_id, status)
        if journaled is not None:
            Journal.done(Path(journaled))
