"""TensorBoard side of a study: an HParams experiment, one session per trial.

Layout of the folder of studies (``HOME/tensorboard``)::

    events.out.tfevents.hparams_config     the experiment: every study's
                                           hyperparameters and metrics
    <study>/hparams_experiment.pb          the study's own experiment
    <study>/adam · η=0.0216 · #7/events.*  trial 7: its session (hyperparameters,
                                           status), per-epoch scalars, histograms,
                                           images, final metrics

A trial's run directory is named as its MLflow run (:mod:`gdbench.tracking.names`),
its session grouped as ``adam · η=0.0216 · #7 · <study>``, so that a dashboard
over several studies keeps each study's trials apart and shows first what sets
a trial apart; every session carries the hyperparameter ``study``
(:mod:`gdbench.tracking._experiment`).

Events are written with TensorBoard's own protos and record writer, straight to
a file, without TensorFlow's summary machinery: no TensorFlow import, no writer
thread, and a flush puts every event so far into the operating system's hands.

A whole curve (:meth:`TensorBoardTrial.log_curves`, a population trial's
thousand epochs) is written as one block: its events are the bytes of
TensorBoard's own scalar proto with each value put in its place, and their
records' CRC32C checksums are computed for every record at once. One proto
from ``tensor_util.make_tensor_proto`` costs about 40 µs, and TensorBoard's
record writer computes each checksum byte by byte in Python: a thousand epochs
of two metrics cost a tenth of a second that way, and about a millisecond so.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import socket
import struct
import time
from pathlib import Path
from typing import BinaryIO, Iterable, Mapping, Sequence

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from gdbench.tracking import _experiment
from gdbench.tracking._crc32c import crc32c_of_bytes, mask, masked_crc32c_of_rows
from gdbench.tracking._domain import HParamDomain, HParamValue
from gdbench.tracking._experiment import STUDY_HPARAM, missing_value, tensorboard_value
from gdbench.tracking.names import trial_run_name

#: Buckets of every histogram, as TensorBoard's own default.
HISTOGRAM_BUCKETS = 30

#: The longest run directory name, in bytes (file systems allow 255).
MAX_DIRECTORY_NAME = 240

_SCALAR_METADATA = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_HISTOGRAM_METADATA = histogram_metadata.create_summary_metadata(
    display_name=None, description=None
)
_IMAGE_METADATA = image_metadata.create_summary_metadata(display_name=None, description=None)
_TEXT_METADATA = text_metadata.create_summary_metadata(display_name=None, description=None)
_file_serial = itertools.count()


def _event_file_name() -> str:
    """A new event file's name, unique across processes and machines sharing a folder."""
    return (f"events.out.tfevents.{int(time.time()):010d}."
            f"{socket.gethostname()}.{os.getpid()}.{next(_file_serial)}")


def directory_name(run_name: str) -> str:
    """A trial's run name as its run directory's: ``/`` (a folder) becomes ``∕``.

    A name too long for a file system keeps its start and its end (``· #7``,
    the trial number, which tells trials apart).
    """
    name = run_name.replace("/", "\u2215").replace("\0", "")
    if len(name.encode()) <= MAX_DIRECTORY_NAME:
        return name
    tail = name[name.rfind("#"):]
    head = name.encode()[:MAX_DIRECTORY_NAME - len(tail.encode()) - 4].decode(errors="ignore")
    return f"{head} … {tail}"


def session_group(study_name: str, run_name: str) -> str:
    """The HParams session group of a trial: ``adam · η=0.0216 · #7 · <study>``.

    The dashboard merges sessions of one group name into one row and shows the
    group's name in a narrow column: the trial's name first, then its study,
    which keeps apart the trials of several studies in one log directory.
    """
    return f"{run_name} · {study_name}"


class TensorBoardStudy:
    """The HParams experiment of one study, in ``directory``.

    Args:
        directory: the study's TensorBoard log directory, created if missing.
        study_name: the study, the first part of its sessions' group names.
    """

    def __init__(self, directory: Path, study_name: str) -> None:
        self.directory = directory
        self.study_name = study_name
        self._domains: dict[str, HParamDomain] = {}
        self._runs: dict[int, str] = {}

    def start(self, domains: Mapping[str, HParamDomain], metrics: Sequence[str],
              objective_metric: str = "") -> None:
        """Write the study's experiment and the one of the folder holding it.

        The study's experiment (every hyperparameter's domain, ``study``
        among them, and every metric) is kept in its folder; the folder of the
        studies gets the union of every study's, the config the dashboard
        reads. Without a config TensorBoard infers the hyperparameters from
        the sessions, as untyped values.

        Args:
            domains: every hyperparameter of the trials, searched or fixed.
            metrics: every metric, the objective first.
            objective_metric: the metric the objective is in this study (``val_loss``).

        Raises:
            ValueError: ``domains`` names ``study``, the hyperparameter of the
                study's name.
        """
        if STUDY_HPARAM in domains:
            raise ValueError(f"hparam_domains: {STUDY_HPARAM!r} is the study's name in "
                             "TensorBoard; track this value under another name")
        self._domains = {STUDY_HPARAM: HParamDomain.fixed(self.study_name), **domains}
        meaning = f"{self.study_name}: {objective_metric}" if objective_metric else ""
        experiment = _experiment.study_experiment(self._domains, metrics, meaning)
        _experiment.write_study(self.directory, experiment, metrics[0] if metrics else "",
                                _config_events)

    def start_trial(self, number: int, hparams: Mapping[str, HParamValue],
                    run_name: str) -> TensorBoardTrial:
        """Open trial ``number``'s run directory and start its HParams session.

        The session holds a value for every hyperparameter of the study: a
        hyperparameter the trial does not have (gd's β1) holds
        :func:`~gdbench.tracking._experiment.missing_value`.

        Args:
            number: the trial number.
            hparams: the trial's hyperparameters, every one declared in
                :meth:`start`'s ``domains``.
            run_name: the trial's name (:func:`~gdbench.tracking.names.trial_run_name`),
                its run directory's.
        """
        given = {**hparams, STUDY_HPARAM: self.study_name}
        values = {name: tensorboard_value(domain, given[name]) if name in given
                  else missing_value(domain) for name, domain in self._domains.items()}
        self._runs[number] = directory_name(run_name)
        return TensorBoardTrial(self.directory / self._runs[number],
                                session_group(self.study_name, run_name), values)

    def run_directory(self, number: int) -> Path:
        """Trial ``number``'s run directory, found by the number its name ends with.

        A trial tracked by another process is found on disk; one with no
        session yet gets a directory named ``#7``.
        """
        if number not in self._runs:
            tail = trial_run_name(number, {}, ())
            # "#17" does not end with "#7": the number ends a name, after its "#".
            found = sorted(path.name for path in self.directory.glob(f"*{tail}")
                           if path.is_dir())
            self._runs[number] = found[0] if found else tail
        return self.directory / self._runs[number]

    def log_png(self, number: int, step: int, tag: str, png: bytes, width: int,
                height: int) -> None:
        """A PNG image of trial ``number``, finished: a new event file in its run directory."""
        directory = self.run_directory(number)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / _event_file_name(), "wb") as file:
            _EventFile(file).write([_image_value(tag, png, width, height)], step)


class TensorBoardTrial:
    """One HParams session: a run directory with one event file.

    Every ``log_*`` method flushes, so a killed trial loses nothing already logged.

    Args:
        directory: the trial's run directory, created if missing.
        group: the session's group name in the HParams dashboard.
        hparams: the trial's hyperparameters, as :func:`tensorboard_value` gives them.
    """

    def __init__(
        self, directory: Path, group: str, hparams: Mapping[str, bool | float | str]
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._events = _EventFile(open(directory / _event_file_name(), "wb"))
        start_info = plugin_data_pb2.SessionStartInfo(
            group_name=group, start_time_secs=time.time()
        )
        for name, value in hparams.items():
            _set_proto_value(start_info.hparams[name], value)
        self._events.write(
            [
                _hparams_value(
                    hparams_metadata.SESSION_START_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(session_start_info=start_info),
                )
            ],
            step=0,
        )
        self._events.flush()

    def log_scalars(self, step: int, metrics: Mapping[str, float]) -> None:
        """One scalar per metric at ``step``."""
        self._events.write([_scalar_value(tag, value) for tag, value in metrics.items()], step)
        self._events.flush()

    def log_curves(self, curves: Mapping[str, np.ndarray]) -> None:
        """Every epoch of each curve at once: step ``e`` holds ``curve[e]`` of every metric."""
        self._events.write_records(_scalar_events(curves, time.time()))
        self._events.flush()

    def log_histograms(self, step: int, tensors: Mapping[str, np.ndarray]) -> None:
        """One histogram per tensor at ``step``; NaN and infinite entries are left out."""
        self._events.write([_histogram_value(tag, array) for tag, array in tensors.items()], step)
        self._events.flush()

    def log_png(self, step: int, tag: str, png: bytes, width: int, height: int) -> None:
        """A PNG image at ``step``."""
        self._events.write([_image_value(tag, png, width, height)], step)
        self._events.flush()

    def finish(
        self, step: int, metrics: Mapping[str, float], texts: Mapping[str, str], success: bool
    ) -> None:
        """Write the final metrics and texts, end the session and close the file."""
        values = [_scalar_value(tag, value) for tag, value in metrics.items()]
        values += [_text_value(tag, text) for tag, text in texts.items()]
        end_info = plugin_data_pb2.SessionEndInfo(
            status=api_pb2.STATUS_SUCCESS if success else api_pb2.STATUS_FAILURE,
            end_time_secs=time.time(),
        )
        values.append(
            _hparams_value(
                hparams_metadata.SESSION_END_INFO_TAG,
                plugin_data_pb2.HParamsPluginData(session_end_info=end_info),
            )
        )
        try:
            self._events.write(values, step)
        finally:
            self._events.close()


class _EventFile:
    """TensorBoard records appended to an open binary file, synchronously."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._records = RecordWriter(file)
        self._write_event(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, values: Iterable[summary_pb2.Summary.Value], step: int) -> None:
        event = event_pb2.Event(wall_time=time.time(), step=step)
        event.summary.value.extend(values)
        self._write_event(event)

    def write_records(self, records: bytes) -> None:
        """Append records already framed (length, checksums) as TensorBoard reads them."""
        self._file.write(records)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def _write_event(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())


def _set_proto_value(proto: object, value: bool | float | str) -> None:
    if isinstance(value, bool):
        proto.bool_value = value  # type: ignore[attr-defined]
    elif isinstance(value, float):
        proto.number_value = value  # type: ignore[attr-defined]
    else:
        proto.string_value = value  # type: ignore[attr-defined]


def _config_events(experiment: api_pb2.Experiment) -> bytes:
    """The bytes of an event file holding ``experiment``, the HParams config."""
    buffer = io.BytesIO()
    _EventFile(buffer).write([_hparams_value(hparams_metadata.EXPERIMENT_TAG, plugin_data_pb2
                                             .HParamsPluginData(experiment=experiment))], step=0)
    return buffer.getvalue()


def _hparams_value(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=hparams_metadata.create_summary_metadata(data),
        tensor=hparams_metadata.NULL_TENSOR,
    )


def _scalar_value(tag: str, value: float) -> summary_pb2.Summary.Value:
    # float32: TensorBoard's fast loader drops float64 scalars without a word.
    # A diverged loss beyond float32's range is meant to show as ±inf.
    with np.errstate(over="ignore"):
        single = np.float32(value)
    return summary_pb2.Summary.Value(
        tag=tag, metadata=_SCALAR_METADATA, tensor=tensor_util.make_tensor_proto(single)
    )


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint of an integer >= 0."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@functools.lru_cache(maxsize=256)
def _scalar_template(tag: str) -> bytes:
    """``_scalar_value(tag, 0.0)`` serialized, its float32 value the last four bytes.

    The tensor field is put after the others (fields may come in any order):
    a value's bytes are this template with those four bytes replaced.
    """
    tensor = tensor_util.make_tensor_proto(np.float32(0.0)).SerializeToString()
    if not tensor.endswith(b"\x00\x00\x00\x00"):
        raise RuntimeError("TensorBoard's scalar tensor proto no longer ends with its value")
    head = summary_pb2.Summary.Value(tag=tag, metadata=_SCALAR_METADATA).SerializeToString()
    tensor_field = b"\x42" + _varint(len(tensor)) + tensor  # field 8, length-delimited
    expected = _scalar_value(tag, 0.0)
    parsed = summary_pb2.Summary.Value.FromString(head + tensor_field)
    if parsed != expected:
        raise RuntimeError("the scalar template does not parse as TensorBoard's scalar value")
    return head + tensor_field


def _scalar_events(curves: Mapping[str, np.ndarray], wall_time: float) -> bytes:
    """Framed records of one event per step, each holding every curve's value at that step."""
    tags = list(curves)
    values = np.stack([np.asarray(curves[tag], dtype=np.float64) for tag in tags], axis=1)
    with np.errstate(over="ignore"):
        singles = values.astype("<f4")
    templates = [_scalar_template(tag) for tag in tags]
    summary = b"".join(b"\x0a" + _varint(len(t)) + t for t in templates)  # Summary.value
    # Where each value's four bytes sit in the summary.
    offsets, position = [], 0
    for template in templates:
        position += 1 + len(_varint(len(template))) + len(template)
        offsets.append(position - 4)
    head = b"\x09" + struct.pack("<d", wall_time)  # Event.wall_time
    tail = b"\x2a" + _varint(len(summary)) + summary  # Event.summary
    blocks = []
    steps = len(values)
    # Steps of one varint length make records of one length: one array each.
    start = 0
    while start < steps:
        width = len(_varint(start))
        stop = min(steps, 1 << (7 * width))
        count = stop - start
        data_length = len(head) + 1 + width + len(tail)
        record = np.empty((count, 16 + data_length), dtype=np.uint8)
        record[:, :8] = np.frombuffer(struct.pack("<Q", data_length), dtype=np.uint8)
        crc = crc32c_of_bytes(struct.pack("<Q", data_length))
        record[:, 8:12] = np.frombuffer(struct.pack("<I", mask(crc)), dtype=np.uint8)
        data = record[:, 12:12 + data_length]
        data[:, :len(head)] = np.frombuffer(head, dtype=np.uint8)
        data[:, len(head)] = 0x10  # Event.step
        step = np.arange(start, stop, dtype=np.int64)
        for byte in range(width):
            low = (step >> (7 * byte)) & 0x7F
            data[:, len(head) + 1 + byte] = low | (0x80 if byte < width - 1 else 0)
        summary_at = len(head) + 1 + width
        data[:, summary_at:] = np.frombuffer(tail, dtype=np.uint8)
        summary_at += len(tail) - len(summary)
        # The rows differ only in the wall time's, the step's and the values' bytes.
        varying = [*range(1, len(head)), *range(len(head) + 1, len(head) + 1 + width)]
        for column, offset in enumerate(offsets):
            at = summary_at + offset
            data[:, at:at + 4] = singles[start:stop, column:column + 1].view(np.uint8)
            varying += range(at, at + 4)
        record[:, 12 + data_length:] = masked_crc32c_of_rows(data, varying).astype(
            "<u4")[:, None].view(np.uint8)
        blocks.append(record.tobytes())
        start = stop
    return b"".join(blocks)


def _histogram_value(tag: str, array: np.ndarray) -> summary_pb2.Summary.Value:
    data = np.asarray(array, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        buckets = np.zeros((HISTOGRAM_BUCKETS, 3))
    else:
        counts, edges = np.histogram(data, bins=HISTOGRAM_BUCKETS)
        buckets = np.stack([edges[:-1], edges[1:], counts], axis=1)
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=_HISTOGRAM_METADATA,
        tensor=tensor_util.make_tensor_proto(buckets, dtype=np.float64),
    )


def _image_value(tag: str, png: bytes, width: int, height: int) -> summary_pb2.Summary.Value:
    # The image plugin's tensor layout: [width, height, encoded image...].
    images = np.array([str(width).encode(), str(height).encode(), png], dtype=object)
    return summary_pb2.Summary.Value(
        tag=tag, metadata=_IMAGE_METADATA, tensor=tensor_util.make_tensor_proto(images)
    )


def _text_value(tag: str, text: str) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=_TEXT_METADATA,
        tensor=tensor_util.make_tensor_proto(text, dtype=np.object_),
    )
