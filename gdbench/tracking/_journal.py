"""A study's journal of finished trials' MLflow runs not yet written: nothing finished only in memory.

A trial's whole run (name, tags, parameters, every metric, its end) is
written to a file of the journal when the trial finishes, before the study
is told; the finished trials of a population batch, told together, go to one
file together (one write, one ``fsync``). A file is deleted once the writer
thread has written and terminated every run in it. A process that ends before
that (killed, out of memory, stopped waiting for an unreachable tracking
server) leaves its files; the next process of the study on this host replays
them (:func:`restore_runs`).

The journal is a folder, ``HOME/tracking-journal/<study>/``, with one folder
per process, ``<host>-<pid>``, of JSON files: a file holds one run (an
object) or a batch's runs (a list of them). Only folders of processes of this
host that are gone are replayed: a live process's writer may still write its
runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from gdbench._files import file_lock

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["MAX_BATCH_METRICS", "RECORD_TAG", "Journal", "JournalFile", "restore_runs",
           "write_whole_run"]

#: The MLflow tag naming a run's journal entry: a replay deletes the run it left half-written.
RECORD_TAG = "gdbench.record"


class Journal:
    """One process's journal entries in a study's journal folder.

    Args:
        folder: the study's journal folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._host = socket.gethostname()
        self._mine = folder / f"{self._host}-{os.getpid()}"

    @staticmethod
    def new_id() -> str:
        """A fresh entry id, the run's :data:`RECORD_TAG`."""
        return uuid.uuid4().hex

    def write(self, entry: dict[str, Any]) -> Path:
        """Write ``entry`` durably, alone in its file, given its id as :meth:`write_batch`
        does; its file."""
        return self._write_durably(f"{_stamp(entry)}.json", entry)

    def write_batch(self, entries: Sequence[dict[str, Any]]) -> JournalFile:
        """Write ``entries`` durably in one file: one write, one ``fsync``.

        Each gets its ``"id"`` (a fresh one unless it has one), also its run's
        :data:`RECORD_TAG`. Returns the file, to be told of each run written
        (:meth:`JournalFile.written`).
        """
        for entry in entries:
            _stamp(entry)
        return JournalFile(self._write_durably(f"batch-{self.new_id()}.json", list(entries)),
                           len(entries))

    def _write_durably(self, name: str, content: Any) -> Path:
        self._mine.mkdir(parents=True, exist_ok=True)
        path = self._mine / name
        partial = path.with_suffix(".partial")
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(content, file)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(path)
        return path

    @staticmethod
    def done(path: Path) -> None:
        """The entry in ``path`` is written to MLflow: forget it."""
        path.unlink(missing_ok=True)

    def pending(self) -> int:
        """How many of this process's runs are in its files not yet written."""
        runs = 0
        for path in self._mine.glob("*.json") if self._mine.is_dir() else []:
            try:
                runs += len(_read(path))
            except (OSError, ValueError):  # written meanwhile, and deleted
                continue
        return runs

    def left_behind(self) -> list[tuple[Path, list[dict[str, Any]]]]:
        """The files of this host's processes that are gone, oldest first, with their runs.

        An unreadable file (its process died while writing it, before the
        study was told) is deleted.
        """
        files = []
        for folder in sorted(self.folder.glob(f"{self._host}-*")) if self.folder.is_dir() else []:
            pid = folder.name.rsplit("-", 1)[1]
            if folder == self._mine or not pid.isdigit() or _alive(int(pid)):
                continue
            for path in folder.glob("*.json"):
                try:
                    entries = _read(path)
                except (OSError, ValueError):
                    path.unlink(missing_ok=True)
                    continue
                if entries:
                    files.append((path, entries))
                else:
                    path.unlink(missing_ok=True)
        return sorted(files, key=lambda found: found[1][0].get("start_time", 0))

    def tidy(self) -> None:
        """Delete the folders of gone processes left empty, and this process's when empty."""
        for folder in self.folder.glob(f"{self._host}-*") if self.folder.is_dir() else []:
            pid = folder.name.rsplit("-", 1)[1]
            if folder == self._mine or (pid.isdigit() and not _alive(int(pid))):
                if not any(folder.glob("*.json")):
                    shutil.rmtree(folder, ignore_errors=True)


class JournalFile:
    """A journal file of one or more runs, deleted once every one of them is written.

    Args:
        path: the file.
        runs: how many runs it holds.
    """

    def __init__(self, path: Path, runs: int) -> None:
        self.path = path
        self._left = runs

    def written(self) -> None:
        """One more of its runs is written to MLflow: forget the file after the last one.

        Called by one thread only (the writer's, or a replay's).
        """
        self._left -= 1
        if self._left <= 0:
            Journal.done(self.path)


def _stamp(entry: dict[str, Any]) -> str:
    """Give ``entry`` its id, a fresh one unless it has one, in its tags too; the id."""
    entry.setdefault("id", Journal.new_id())
    entry["tags"] = {**entry["tags"], RECORD_TAG: entry["id"]}
    return entry["id"]


def _read(path: Path) -> list[dict[str, Any]]:
    """The runs in a journal file: one (an object) or a batch's (a list)."""
    content = json.loads(path.read_text(encoding="utf-8"))
    return content if isinstance(content, list) else [content]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: MLflow's limit on the metrics of one ``log_batch``.
MAX_BATCH_METRICS = 1000


def write_whole_run(client: MlflowClient, entry: dict[str, Any],
                    file: JournalFile | None = None) -> str:
    """Write a whole run now: created with its tags, its parameters and metrics in batches,
    terminated; then its journal ``file``, where there is one, told. Its id.

    ``entry`` holds ``experiment_id``, ``run_name``, ``start_time``, ``tags``,
    ``params`` (name → text), ``metrics`` (``[key, value, timestamp, step]``)
    and ``status``.
    """
    from mlflow.entities import Metric, Param

    params = [Param(key, value) for key, value in entry["params"].items()]
    metrics = [Metric(key, value, timestamp, step)
               for key, value, timestamp, step in entry["metrics"]]
    run = client.create_run(entry["experiment_id"], start_time=entry["start_time"],
                            run_name=entry["run_name"], tags=entry["tags"])
    run_id = run.info.run_id
    try:
        for first in range(0, max(len(metrics), len(params)), MAX_BATCH_METRICS):
            client.log_batch(run_id, metrics=metrics[first:first + MAX_BATCH_METRICS],
                             params=params if first == 0 else [])
    finally:
        client.set_terminated(run_id, entry["status"])
    if file is not None:
        file.written()
    return run_id


def restore_runs(folder: Path) -> int:
    """Write the runs that gone processes of this host left in the journal ``folder``.

    A run one of them began or wrote (tagged :data:`RECORD_TAG` with the entry's id) is
    deleted first: the entry holds it whole (a batch's file is deleted only once all
    its runs are written, so some of them may be in the store already). Each run goes to the tracking
    store and experiment its entry names, nested in the parent run it names.

    Returns:
        How many runs were written.

    Raises:
        OSError: there are runs to write, and the folder cannot be written.
    """
    if not folder.is_dir() or not Journal(folder).left_behind():
        return 0
    # Two processes starting together would both write the runs.
    with file_lock(folder / ".restore.lock"):
        return _restore_runs(Journal(folder))


def _restore_runs(journal: Journal) -> int:
    left = journal.left_behind()
    if not left:
        journal.tidy()
        return 0
    from mlflow.tracking import MlflowClient

    clients: dict[str, MlflowClient] = {}
    for path, entries in left:
        file = JournalFile(path, len(entries))
        for entry in entries:
            client = clients.setdefault(entry["tracking_uri"],
                                        MlflowClient(tracking_uri=entry["tracking_uri"]))
            for run in client.search_runs([entry["experiment_id"]],
                                          f"tags.`{RECORD_TAG}` = '{entry['id']}'"):
                client.delete_run(run.info.run_id)
            write_whole_run(client, entry, file)
    journal.tidy()
    return sum(len(entries) for _, entries in left)
