"""Reading a tracked study back from MLflow: its parameters and its trials' per-epoch curves.

What :class:`~gdbench.tracking.StudyTracker` wrote is read again, so that a
report drawn later shows the curves the trials had, without training them
again:

- a population trial's every epoch, from the ``curves/*.npz`` artifacts of
  the study's parent run (MLflow's own metrics of such a trial hold only the
  epochs of :func:`~gdbench.tracking.curve_steps`);
- any other trial's curves from its run's metric history, which holds every
  epoch (a metric logged at only some epochs is left out).

For a home where ``gdbench run studies/quickstart.toml`` ran::

    stored = StoredStudy("sqlite:///runs/mlflow.db", "quickstart_sigmoid")
    stored.params()["epochs"]               # '100'
    stored.curves([3, 12])[3]["loss"][:2]   # array([0.69, 0.61])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gdbench.tracking.artifacts import CURVES_FOLDER, local_artifact_folder
from gdbench.tracking.trial_tracker import OBJECTIVE_METRIC

if TYPE_CHECKING:
    from mlflow.entities import Run

# MLflow (about a second to import) is imported by the functions that read a study
# back, not with this module: a command whose study is not tracked in MLflow
# imports this module (through the report) but never reads one back.

__all__ = ["StoredStudy"]


class StoredStudy:
    """A study as MLflow holds it: its parent run and its trials' runs.

    The study's runs are found by their tags in every active experiment, so
    that the experiment's name need not be known.

    Args:
        tracking_uri: the MLflow tracking URI the study was tracked in.
        study_name: the study's name.

    Raises:
        ValueError: an empty ``tracking_uri`` or ``study_name``.
    """

    def __init__(self, tracking_uri: str, study_name: str) -> None:
        for field, value in (("tracking_uri", tracking_uri), ("study_name", study_name)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{field}: expected a non-empty string, got {value!r}")
        self.study_name = study_name
        self.tracking_uri = tracking_uri
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self._experiments = [experiment.experiment_id
                             for experiment in self.client.search_experiments()]

    def _runs(self, role: str) -> list[Run]:
        from gdbench.tracking._mlflow_experiment import ROLE_TAG, STUDY_TAG

        if not self._experiments:
            return []
        runs: list[Run] = []
        page_token = None
        while True:
            page = self.client.search_runs(self._experiments, f"tags.`{ROLE_TAG}` = '{role}'",
                                           max_results=1000, page_token=page_token)
            # Compared here rather than in the filter, which would need the name escaped.
            runs += [run for run in page if run.data.tags.get(STUDY_TAG) == self.study_name]
            page_token = page.token
            if not page_token:
                return runs

    def parent(self) -> Run | None:
        """The study's parent run (the oldest, as the tracker keeps it); ``None`` if none."""
        parents = sorted(self._runs("parent"), key=lambda run: (run.info.start_time,
                                                                run.info.run_id))
        return parents[0] if parents else None

    def params(self) -> dict[str, str]:
        """The parameters of the study's parent run (``epochs``, ``batch_size``, ...), as text."""
        parent = self.parent()
        return dict(parent.data.params) if parent is not None else {}

    def curves(self, numbers: Iterable[int]) -> dict[int, dict[str, np.ndarray]]:
        """Every epoch of the curves of trials ``numbers`` that MLflow holds.

        Population curves (the parent run's ``curves/*.npz``) first; the other
        trials' from their runs' metric histories, keeping each metric logged
        at every epoch from the first. A trial with neither is left out.

        Args:
            numbers: trial numbers.

        Returns:
            trial number → metric → ``[epochs]`` float64 values.
        """
        wanted = {int(number) for number in numbers}
        found = self._population_curves(wanted)
        missing = wanted - set(found)
        if missing:
            found.update(self._metric_histories(missing))
        return found

    def _population_curves(self, wanted: set[int]) -> dict[int, dict[str, np.ndarray]]:
        parent = self.parent()
        if parent is None or not wanted:
            return {}
        found: dict[int, dict[str, np.ndarray]] = {}
        # A home's own files where they lie on disk; else through MLflow's client.
        folder = local_artifact_folder(self.tracking_uri, parent.info.artifact_uri)
        if folder is not None:
            self._read_curves(sorted((folder / CURVES_FOLDER).glob("*.npz")), wanted, found)
            return found
        run_id = parent.info.run_id
        if not any(artifact.path.endswith(".npz")
                   for artifact in self.client.list_artifacts(run_id, CURVES_FOLDER)):
            return found
        with tempfile.TemporaryDirectory(prefix="gdbench-curves-") as where, _quiet_download():
            local = Path(self.client.download_artifacts(run_id, CURVES_FOLDER, where))
            self._read_curves(sorted(local.glob("*.npz")), wanted, found)
        return found

    @staticmethod
    def _read_curves(paths: Sequence[Path], wanted: set[int],
                     found: dict[int, dict[str, np.ndarray]]) -> None:
        for path in paths:
            with np.load(path) as arrays:
                for key in arrays.files:
                    number, _, metric = key.partition("/")
                    if number.isdigit() and int(number) in wanted and metric:
                        found.setdefault(int(number), {})[metric] = np.asarray(
                            arrays[key], dtype=np.float64)

    def _metric_histories(self, wanted: set[int]) -> dict[int, dict[str, np.ndarray]]:
        from gdbench.tracking._mlflow_experiment import TRIAL_NUMBER_TAG

        found: dict[int, dict[str, np.ndarray]] = {}
        # A finished run last, so that it wins over one a dead process left behind.
        for run in sorted(self._runs("trial"), key=lambda run: run.info.status == "FINISHED"):
            number = run.data.tags.get(TRIAL_NUMBER_TAG, "")
            if not number.isdigit() or int(number) not in wanted:
                continue
            history = self._dense_history(run.info.run_id, run.data.metrics)
            if history:
                found[int(number)] = history
        return found

    def _dense_history(self, run_id: str, metrics: Mapping[str, float]) -> dict[str, np.ndarray]:
        history = {}
        for key in metrics:
            if key == OBJECTIVE_METRIC:
                continue
            points = {metric.step: metric.value
                      for metric in self.client.get_metric_history(run_id, key)}
            if points and sorted(points) == list(range(len(points))):
                history[key] = np.array([points[step] for step in range(len(points))],
                                        dtype=np.float64)
        return history


@contextlib.contextmanager
def _quiet_download() -> Iterator[None]:
    """No MLflow progress bar on the terminal while artifacts are downloaded."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
